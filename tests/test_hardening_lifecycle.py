"""Hardening: connections across event loops, and calls cut short by ``close()``."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient


async def _add(client: AsyncHTTPClient, a: int) -> Any:
    return await client.add(a, 1)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


@needs_proc
def test_successive_event_loops_release_their_connections(example_url: str) -> None:
    # One client under many asyncio.run() calls: each finished loop's session is closed as
    # that loop shuts down (it used to be kept open forever: one socket per loop).
    client = AsyncHTTPClient(example_url)
    assert asyncio.run(_add(client, 2)) == 3
    before = _open_descriptors()
    for a in range(40):
        assert asyncio.run(_add(client, a)) == a + 1
    assert _open_descriptors() - before < 5
    assert len(client._core.transport._sessions) == 0  # the last loop's went with it
    asyncio.run(client.close())


@pytest.fixture
def two_loops() -> Iterator[list[asyncio.AbstractEventLoop]]:
    loops = [asyncio.new_event_loop() for _ in range(2)]
    threads = [threading.Thread(target=loop.run_forever, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    yield loops
    for loop, thread in zip(loops, threads, strict=True):
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@needs_proc
def test_two_loops_in_two_threads_keep_one_session_each(
    example_url: str, two_loops: list[asyncio.AbstractEventLoop]
) -> None:
    client = AsyncHTTPClient(example_url)

    def on(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    for loop in two_loops:
        assert on(loop, _add(client, 0)) == 1
    before = _open_descriptors()
    for a in range(40):  # every call switches loop
        assert on(two_loops[a % 2], _add(client, a)) == a + 1
    assert _open_descriptors() - before < 5
    assert len(client._core.transport._sessions) == 2
    on(two_loops[0], client.close())  # closes the other loop's session on that loop
    on(two_loops[1], asyncio.sleep(0.1))
    assert client._core.transport._sessions == {}
