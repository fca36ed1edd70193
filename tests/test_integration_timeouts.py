"""Integration: timeouts and pool limits against a real `bentoml serve`, both clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _clients import close_client, open_client

from asyncbento import AsyncHTTPClient, Limits, Timeout
from asyncbento import exceptions as exc


async def test_read_timeout_is_typed_and_not_retried(client_kind: str, example_url: str) -> None:
    client = await open_client(client_kind, example_url, timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(exc.ReadTimeout) as info:
            await client.slow(delay=3.0)
        assert isinstance(info.value, TimeoutError)
        assert info.value.attempts == 1
        assert time.monotonic() - started < 2.0
        assert await client.add(1, 1) == 2  # the client is still usable
    finally:
        await close_client(client)


async def test_per_call_timeout_override(client: Any, client_kind: str) -> None:
    target = client.sync if client_kind == "sync" else client
    view = target.with_options(timeout=Timeout(total=0.3))
    call = view.slow if client_kind == "async" else None
    if call is not None:
        with pytest.raises(exc.ReadTimeout):
            await call(delay=2.0)
    else:
        with pytest.raises(exc.ReadTimeout):
            await asyncio.to_thread(view.slow, delay=2.0)
    assert await client.slow(delay=0.5) == {"slept": 0.5}  # the client's own default is intact


async def test_total_timeout_does_not_cut_a_long_stream(client_kind: str, example_url: str) -> None:
    client = await open_client(client_kind, example_url, timeout=1.0)
    try:
        chunks = [c async for c in client.stream_async(n=8, delay=0.25)]
        assert "".join(chunks) == "".join(f"tok{i}\n" for i in range(8))
    finally:
        await close_client(client)


async def test_stream_silence_longer_than_read_timeout_raises(
    client_kind: str, example_url: str
) -> None:
    client = await open_client(client_kind, example_url, timeout=Timeout(total=10, read=0.4))
    try:
        received = []
        with pytest.raises(exc.ReadTimeout):
            async for chunk in client.stream_async(n=3, delay=1.5):
                received.append(chunk)
        assert received == []
    finally:
        await close_client(client)


async def test_waiting_for_a_connection_does_not_eat_the_timeout(example_url: str) -> None:
    limits = Limits(max_connections=1)
    async with AsyncHTTPClient(example_url, limits=limits, timeout=1.0) as client:
        started = time.monotonic()
        results = await asyncio.gather(*(client.slow(delay=0.6) for _ in range(3)))
        elapsed = time.monotonic() - started
    assert results == [{"slept": 0.6}] * 3
    assert elapsed >= 1.7  # one at a time: the pool limit holds


async def test_pool_limit_bounds_connections(example_url: str) -> None:
    limits = Limits(max_connections=4)
    async with AsyncHTTPClient(example_url, limits=limits) as client:
        await asyncio.gather(*(client.slow(delay=0.2) for _ in range(20)))
        connector = client._core.transport.session.connector
        assert sum(len(v) for v in connector._conns.values()) <= 4
