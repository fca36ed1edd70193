"""An example service that reports not-ready for a while after it starts.

``$ASYNCBENTO_READY_AFTER`` seconds (default 3) pass before ``/readyz`` answers 200.
"""

from __future__ import annotations

import os
import time

import bentoml


@bentoml.service(name="slow_ready_service", threads=2)
class SlowReadyService:
    def __init__(self) -> None:
        self.ready_at = time.monotonic() + float(os.environ.get("ASYNCBENTO_READY_AFTER", "3"))

    def __is_ready__(self) -> bool:
        return time.monotonic() >= self.ready_at

    @bentoml.api
    def ping(self) -> str:
        return "pong"
