"""The client's set-up: readiness (one probe of ``/readyz``, and the wait that polls it with
backoff) and the service's ``/schema.json`` (fetched, or a generated client's embedded copy).

The client runs them once, under its set-up lock; ``is_ready()`` and
``wait_until_server_ready()`` use the readiness part directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from ._transport import Transport
from .exceptions import BentoMLException, ReadinessTimeout, TransportError

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


Fetch = Callable[[], Awaitable[Any]]


async def fetch_schema(read: Fetch, where: str) -> Any:
    """``/schema.json`` as ``read()`` gets it; an error answer says it was the schema's.

    Raises:
        BentoMLException: the error answer, typed by status, naming ``where`` (a URL without
            credentials).
    """
    try:
        return await read()
    except BentoMLException as exc:
        if exc.status is None:
            raise
        raise type(exc)(
            f"Failed to fetch schema from {where}: {exc.message}",
            error_code=exc.error_code,
            body=exc.body,
            request_id=exc.request_id,
            trace_id=exc.trace_id,
            status=exc.status,
        ) from exc


async def schema_document(
    fetch: Fetch, embedded: Mapping[str, Any] | None, check: bool, where: str
) -> Any:
    """The service's schema: ``fetch()``-ed, or a generated client's ``embedded`` copy
    (compared with the live one first when ``check``; a difference raises ``SchemaMismatch``)."""
    if embedded is None:
        return await fetch()
    if check:
        from ._drift import check_schema  # only generated clients need it

        check_schema(embedded, await fetch(), where)
    return embedded
