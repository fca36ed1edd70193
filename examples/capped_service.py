"""A service that accepts at most 4 calls at once, as a real deployment caps its concurrency.

``traffic={"max_concurrency": 4}`` makes BentoML answer ``429 Too many requests`` to every
request beyond 4 in flight; ``echo`` takes a fixed ``$ASYNCBENTO_CAPPED_LATENCY`` seconds
(default 0.05), so the ideal time for N inputs is ``N x latency / 4``. The batch engine's
integration tests and the guide's table run against it.
"""

from __future__ import annotations

import asyncio
import os

import bentoml

LATENCY = float(os.environ.get("ASYNCBENTO_CAPPED_LATENCY", "0.05"))


@bentoml.service(name="capped_service", traffic={"max_concurrency": 4})
class CappedService:
    @bentoml.api
    async def echo(self, x: int) -> int:
        await asyncio.sleep(LATENCY)
        return x

    @bentoml.task
    async def echo_task(self, x: int) -> int:
        await asyncio.sleep(LATENCY)
        return x
