"""Readiness: one probe of ``/readyz``, and the wait that polls it with backoff until it answers.

Used by the client's set-up (``server_ready_timeout``), ``is_ready()`` and
``wait_until_server_ready()``.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from yarl import URL

from ._transport import Transport
from .exceptions import ReadinessTimeout, TransportError

POLL_INITIAL = 0.05
POLL_MAX = 1.0
PROBE_TIMEOUT = 2.0


async def probe(transport: Transport, url: URL, timeout: float) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds; False when nothing usable
    answers (a transport failure)."""
    try:
        response = await transport.start("GET", url, timeout=aiohttp.ClientTimeout(total=timeout))
        try:
            await transport.read(response)
        finally:
            transport.finish(response)
    except TransportError:
        return False
    return response.status == 200


async def wait_until_ready(transport: Transport, url: URL, limit: float) -> None:
    """Probe ``url`` with backoff until it answers 200.

    Raises:
        ReadinessTimeout: still not ready after ``limit`` seconds.
    """
    deadline = time.monotonic() + limit
    delay = POLL_INITIAL
    while True:
        remaining = deadline - time.monotonic()
        if await probe(transport, url, max(0.05, min(PROBE_TIMEOUT, remaining))):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadinessTimeout(f"Server is not ready after {limit} seconds")
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, POLL_MAX)
