"""Hardening: connections across event loops, and calls cut short by ``close()``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _clients import close_client, open_client
from _misbehaving import MisbehavingServer, error

from asyncbento import AsyncHTTPClient
from asyncbento import exceptions as exc


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
    deadline = time.monotonic() + 10
    while client._core.transport._sessions and time.monotonic() < deadline:
        on(two_loops[1], asyncio.sleep(0.05))
    assert client._core.transport._sessions == {}


# ----------------------------------------------------------------- close() with calls in flight


async def test_close_ends_calls_in_flight_with_client_closed(client: Any) -> None:
    # They used to end with ConnectionLost, or, retried, with a raw RuntimeError after a backoff.
    running = [asyncio.ensure_future(client.slow(delay=5)) for _ in range(3)]
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await client.close()
    for call in running:
        with pytest.raises(exc.ClientClosed, match="the client is closed"):
            await call
    assert time.monotonic() - started < 3  # the calls would have run 5 s
    with pytest.raises(exc.ClientClosed):  # also a RuntimeError, as before
        await client.add(1, 2)


async def test_an_open_stream_raises_client_closed_after_close(client: Any) -> None:
    stream = client.stream_async(n=50, delay=0.05).__aiter__()
    assert (await stream.__anext__()).startswith("tok0")
    await asyncio.sleep(0.3)  # items arrive and wait in buffers: they are not handed out
    await client.close()
    with pytest.raises(exc.ClientClosed):
        await stream.__anext__()


EXIT_SCRIPT = """
import sys, threading, time
import asyncbento

client = asyncbento.SyncHTTPClient(sys.argv[1])


def stream() -> None:
    for _ in client.stream_async(n=1000, delay=0.05):
        pass


threading.Thread(target=stream, daemon=True).start()
threading.Thread(target=lambda: client.slow(delay=30), daemon=True).start()
time.sleep(0.5)
print(time.time(), flush=True)
"""


def test_exit_with_daemon_threads_in_sync_calls_is_prompt_and_quiet(example_url: str) -> None:
    # One daemon thread iterates a stream, another waits on a 30 s call: exit closes the
    # client without waiting for them, and without a traceback from either thread.
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, example_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    ended = time.time()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert ended - float(result.stdout) < 4.0  # the portal's shutdown allows 5 s per step


@pytest.mark.parametrize("spans", [False, True], ids=["no-spans", "spans"])
async def test_close_ends_a_wait_between_retries(client_kind: str, spans: bool) -> None:
    # A 503 asking for 30 s (Retry-After): the call waits to retry; close() ends the wait.
    # With OpenTelemetry spans on too: every request goes through the same retry path.
    with contextlib.ExitStack() as stack:
        if spans:
            from opentelemetry.sdk.trace import TracerProvider

            from asyncbento.integrations.opentelemetry import AsyncBentoInstrumentor

            AsyncBentoInstrumentor().instrument(tracer_provider=TracerProvider())
            stack.callback(AsyncBentoInstrumentor().uninstrument)
        server = stack.enter_context(MisbehavingServer())
        server.default("/echo", error(503, "busy", retry_after="30"))
        client = await open_client(client_kind, server.url, timeout=5)
        call = asyncio.ensure_future(client.echo(data={}))
        while server.count("/echo") < 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # now in its 30 s wait
        started = time.monotonic()
        await close_client(client)
        with pytest.raises(exc.ClientClosed):
            await call
        assert time.monotonic() - started < 5
        assert server.count("/echo") == 1
