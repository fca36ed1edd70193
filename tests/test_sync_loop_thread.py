"""The sync client's loop runs on its own thread all the time, so work goes on between calls.

A byte-level server (``_misbehaving.py``) counts the connections the client has not closed: an
idle pool past its keep-alive expiry is closed while the program makes no call. Batches whose
loop body is slow, and Ctrl-C in one. (Streams left early or dropped, closed on the server at
once, are compared with BentoML's sync client in ``test_differential_bentoml.py``.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from _clients import close_client, open_client
from _misbehaving import MisbehavingServer, chunks, hang, ok, wait_for
from _misbehaving import misbehaving as misbehaving

from asyncbento import Limits, SyncHTTPClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_idle_connections_expire_while_the_program_makes_no_call(
    misbehaving: MisbehavingServer,
) -> None:
    limits = Limits(keepalive_expiry=0.5)
    with SyncHTTPClient(misbehaving.url, retry=None, limits=limits) as client:
        assert client.map("echo", [{"data": {"i": i}} for i in range(8)], concurrency=4) == [
            {"data": {"i": i}} for i in range(8)
        ]
        assert misbehaving.open_connections() >= 1
        # No call from here on: only the client's own loop thread can close them.
        wait_for(lambda: misbehaving.open_connections() == 0, 2.0)
        assert client.echo(data={"after": 1}) == {"data": {"after": 1}}


async def test_a_slow_loop_body_does_not_time_out_quick_answers(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    """Answers that came in 1 ms are not timed out while the caller's loop body takes 1.5 s."""
    inputs = [{"data": {"i": i}} for i in range(3)]
    client = await open_client(client_kind, misbehaving.url, retry=None, timeout=1)
    try:
        if client_kind == "sync":

            def consume() -> list[tuple[int, Any]]:
                seen = []
                for pair in client.sync.imap("echo", inputs, concurrency=2):
                    seen.append(pair)
                    time.sleep(1.5)
                return seen

            seen = await asyncio.to_thread(consume)
        else:
            seen = []
            async for pair in client.imap("echo", inputs, concurrency=2):
                seen.append(pair)
                await asyncio.sleep(1.5)
    finally:
        await close_client(client)
    assert sorted(seen) == [(i, {"data": {"i": i}}) for i in range(3)]
    assert misbehaving.count("/echo") == 3


def test_ctrl_c_during_a_sync_imap(misbehaving: MisbehavingServer) -> None:
    misbehaving.default("/echo", hang())
    code = """
        import asyncio, sys, time
        from asyncbento import SyncHTTPClient
        from asyncbento._portal import get_portal
        client = SyncHTTPClient(sys.argv[1], retry=None)
        print("ready", flush=True)
        started = time.monotonic()
        try:
            for pair in client.imap("echo", [{"data": {}}] * 4, concurrency=4):
                print("unexpected", pair, flush=True)
        except KeyboardInterrupt:
            elapsed = time.monotonic() - started
            time.sleep(0.3)
            async def others():  # tasks on the portal's loop besides this one
                return len(asyncio.all_tasks()) - 1
            print("interrupted", round(elapsed, 1), "pending", get_portal().call(others()))
        client.close()
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), misbehaving.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    wait_for(lambda: misbehaving.count("/echo") == 4, 10.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err == "", err
    words = out.split()
    assert words[0] == "interrupted", out
    assert float(words[1]) < 10
    assert words[3] == "0", "the batch's requests are still running on the loop"
    wait_for(lambda: misbehaving.open_connections() == 0, 2.0)


# ----------------------------------------------------------------------------- the waker
# A waiting caller sleeps on its thread's waker (an eventfd), reused from call to call. These
# pin down the hazards of reusing it: a call nested in the wait, a call given up, thread exit.


async def _after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


def test_a_call_nested_in_a_wait_gets_its_own_result() -> None:
    # A signal handler runs in the main thread while it waits; a sync call made there must
    # not take the outer call's wake-up, nor the outer call the inner one's.
    from asyncbento._portal import get_portal

    portal, inner = get_portal(), []

    def handler(signum: int, frame: Any) -> None:
        inner.append(portal.call(_after(0.2, "inner")))  # the outer call ends meanwhile

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert portal.call(_after(0.1, "outer")) == "outer"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert inner == ["inner"]
    assert portal.call(_after(0, "next")) == "next"


class _GaveUp(Exception):
    pass


def test_a_call_given_up_leaves_no_wake_up_for_the_next() -> None:
    from asyncbento._portal import get_portal

    portal = get_portal()

    def give_up(signum: int, frame: Any) -> None:
        raise _GaveUp

    previous = signal.signal(signal.SIGALRM, give_up)
    try:
        for _ in range(5):
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            try:
                portal.call(_after(0.02, "given up"))  # finishes about when it is given up
            except _GaveUp:
                pass
            signal.setitimer(signal.ITIMER_REAL, 0)
            # The next calls wait for their own work: a late wake-up would return at once,
            # before the work is done (with no result).
            started = time.monotonic()
            assert portal.call(_after(0.05, "mine")) == "mine"
            assert time.monotonic() - started >= 0.045
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_threads_that_end_release_their_wakers() -> None:
    import gc
    import threading

    from asyncbento._portal import get_portal

    portal = get_portal()
    portal.call(_after(0, "warm"))

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def one_call() -> None:
        assert portal.call(_after(0, "x")) == "x"

    before = open_fds()
    for _ in range(3):
        threads = [threading.Thread(target=one_call) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    gc.collect()
    assert open_fds() <= before + 2, "each thread's waker is closed when the thread ends"


def test_where_there_is_no_eventfd_a_pipe_wakes_the_caller() -> None:
    # macOS and Windows have no eventfd: the same waker runs on a pipe.
    code = textwrap.dedent(
        """
        import asyncio, os, threading
        del os.eventfd
        from asyncbento._handoff import Waker as _Waker
        from asyncbento._portal import get_portal

        async def after(seconds, value):
            await asyncio.sleep(seconds)
            return value

        portal = get_portal()
        assert [portal.call(after(0, i)) for i in range(200)] == list(range(200))
        results = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(portal.call(after(0.01, i))))
            for i in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == list(range(16))
        waker = _Waker()
        assert waker._read != waker._write  # a pipe's two ends
        assert waker.wait(timeout=0.01) is False
        waker.wake()
        assert waker.wait(timeout=1) is True
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""


@pytest.mark.parametrize("kind", ["stream", "events"])
def test_sync_streams_and_events_are_read_ahead_off_their_connection(
    misbehaving: MisbehavingServer, kind: str
) -> None:
    """A stream (of chunks, or of Server-Sent Events) is read ahead on the loop: once the rest
    has arrived it is off the connection, which another call can take while the program holds
    the items (here the pool's only connection)."""
    misbehaving.default("/stream", chunks([f"tok{i}\n".encode() for i in range(50)]))
    misbehaving.default("/events", chunks([f"data: {i}\n\n".encode() for i in range(50)]))
    misbehaving.default("/echo", ok(None))
    with SyncHTTPClient(misbehaving.url, retry=None, limits=Limits(max_connections=1)) as client:
        items = client.stream(data={}) if kind == "stream" else client.events.events(data={})
        first = next(items)
        answers: list[Any] = []

        def another_call() -> None:
            answers.append(client.echo(data={"x": 1}))

        other = threading.Thread(target=another_call, daemon=True)
        other.start()
        other.join(5)
        assert answers == [{"data": {"x": 1}}], "the stream still held the only connection"
        received = [first, *items]
    if kind == "stream":
        assert received == [f"tok{i}\n" for i in range(50)]
    else:
        assert [event.data for event in received] == [str(i) for i in range(50)]
