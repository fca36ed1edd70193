"""The sync shim's hazards: threads, running loops, Ctrl-C, fork, exit, close, contextvars."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import gc
import inspect
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from asyncbento import AsyncHTTPClient, ServerSentEvent, SyncHTTPClient, _sync
from asyncbento._portal import get_portal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_facade_has_no_request_logic() -> None:
    """Every public sync method only hands the async client's coroutine to the portal."""
    checked = 0
    for cls in (_sync.SyncHTTPClient, _sync.Task, _sync.SyncEndpointMethod):
        for name, member in vars(cls).items():
            if name.startswith("_") and name not in ("__call__", "__getattr__"):
                continue
            if isinstance(member, property):
                source = inspect.getsource(member.fget)  # type: ignore[arg-type]
                assert "self._async." in source or "self._task." in source, name
                continue
            if not callable(member) or name == "with_options":
                continue
            function = ast.parse(textwrap.dedent(inspect.getsource(member))).body[0]
            assert isinstance(function, ast.FunctionDef)
            body = [
                statement
                for statement in function.body
                if not (
                    isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                )
            ]
            code = ast.unparse(ast.Module(body=body, type_ignores=[]))
            assert len(body) <= 6, (cls.__name__, name, code)
            # __getattr__ of the client only reports an unknown name, through the registry;
            # a stream is bridged by _bridge_stream (_blocking's own way for streams).
            assert any(
                call in code for call in ("_blocking(", "_bridge_stream(", "resolve(self._async")
            ), (cls.__name__, name, code)
            checked += 1
    assert checked >= 15
    source = inspect.getsource(_sync)
    # (``self._async.request(...)`` is the async client's request(), forwarded.)
    for forbidden in ("import aiohttp", "msgspec", "build_body", "error_from_answer", "session."):
        assert forbidden not in source


def test_sync_signatures_match_async(example_url: str) -> None:
    assert inspect.signature(SyncHTTPClient) == inspect.signature(AsyncHTTPClient)
    assert inspect.signature(SyncHTTPClient.request) == inspect.signature(AsyncHTTPClient.request)
    with SyncHTTPClient(example_url) as client:
        assert str(inspect.signature(client.add)) == "(a: int, b: int = 0)"
        assert client.add.__name__ == "add"


def test_usable_without_with_and_close_twice(example_url: str) -> None:
    client = SyncHTTPClient(example_url)
    assert client.add(1, 2) == 3
    client.close()
    client.close()
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        client.add(1, 2)


def test_inside_a_running_event_loop(example_url: str) -> None:
    async def handler() -> int:
        # A sync helper called from async code, as in Jupyter or a web handler.
        with SyncHTTPClient(example_url) as client:
            return client.add(20, 22)  # type: ignore[no-any-return]

    assert asyncio.run(handler()) == 42


def test_64_threads_share_one_client_and_overlap(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(lambda i: client.slow(delay=1.0), range(64)))
        elapsed = time.monotonic() - started
        sums = list(ThreadPoolExecutor(64).map(lambda i: client.add(i, 1), range(640)))
    assert results == [{"slept": 1.0}] * 64
    assert sums == [i + 1 for i in range(640)]
    assert elapsed < 16, f"64 one-second calls took {elapsed:.1f}s: they did not overlap"


def test_stream_crosses_one_item_at_a_time_and_releases(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        stream = client.stream_async(n=50, delay=0.05)
        assert inspect.isgenerator(stream)
        first = next(stream)
        assert first.startswith("tok0")
        stream.close()
        connector = client._async._core.transport.session.connector
        assert len(connector._acquired) == 0
        for _ in range(50):
            for _chunk in client.stream_async(n=1000):
                break
        assert len(connector._acquired) == 0
        assert client.add(1, 1) == 2


def test_call_from_the_portal_thread_refuses(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:

        async def inside() -> None:
            client.add(1, 2)

        with pytest.raises(RuntimeError, match="own event loop"):
            get_portal().call(inside())


def test_context_variables_reach_the_coroutine() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def read() -> str:
        return var.get()

    token = var.set("from caller")
    try:
        assert get_portal().call(read()) == "from caller"
    finally:
        var.reset(token)
    seen = []
    thread = threading.Thread(
        target=lambda: (var.set("thread"), seen.append(get_portal().call(read())))
    )
    thread.start()
    thread.join()
    assert seen == ["thread"]


def test_ctrl_c_interrupts_a_blocked_call(example_url: str) -> None:
    code = """
        import sys, time, asyncio
        from asyncbento import SyncHTTPClient
        from asyncbento._portal import get_portal
        client = SyncHTTPClient(sys.argv[1])
        print("ready", flush=True)
        started = time.monotonic()
        try:
            client.slow(delay=30)
        except KeyboardInterrupt:
            elapsed = time.monotonic() - started
            time.sleep(0.2)
            async def pending():
                me = asyncio.current_task()
                return len([t for t in asyncio.all_tasks() if t is not me])
            print("interrupted", round(elapsed, 1), "pending", get_portal().call(pending()), flush=True)
        client.close()
    """
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), example_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    words = out.split()
    assert words[0] == "interrupted", out
    assert float(words[1]) < 5
    assert words[3] == "0", "the cancelled request is still running on the loop"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_client_keeps_working_in_a_forked_child(example_url: str) -> None:
    code = """
        import os, sys
        from asyncbento import SyncHTTPClient
        client = SyncHTTPClient(sys.argv[1])
        assert client.add(1, 1) == 2
        stream = list(client.stream_async(n=2))
        pid = os.fork()
        if pid == 0:
            try:
                ok = client.add(2, 3) == 5 and "".join(client.stream_async(n=2)) == "tok0\\ntok1\\n"
                client.close()
            except BaseException as error:
                print("child failed", repr(error), flush=True)
                os._exit(1)
            os._exit(0 if ok else 2)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), "parent", client.add(3, 4), flush=True)
        client.close()
    """
    result = run_script(code, example_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == ["child", "0", "parent", "7"], result.stdout


def test_exit_with_unclosed_clients_is_quiet(example_url: str) -> None:
    code = """
        import sys
        from asyncbento import SyncHTTPClient
        clients = [SyncHTTPClient(sys.argv[1]) for _ in range(3)]
        print(sum(c.add(1, 1) for c in clients), flush=True)
        stream = clients[0].stream_async(n=100)
        next(stream)
    """
    started = time.monotonic()
    result = run_script(code, example_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"
    assert result.stderr.strip() == "", result.stderr
    assert time.monotonic() - started < 20


def test_dropped_client_is_closed_by_gc(example_url: str) -> None:
    import gc

    client = SyncHTTPClient(example_url)
    transport = client._async._core.transport
    assert client.add(1, 1) == 2
    del client
    gc.collect()
    deadline = time.monotonic() + 5
    while not transport.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert transport.closed


def test_uvloop_portal_when_asked_for(example_url: str) -> None:
    code = """
        import sys, asyncio
        from asyncbento import SyncHTTPClient
        from asyncbento._portal import get_portal
        with SyncHTTPClient(sys.argv[1]) as client:
            assert client.add(1, 2) == 3
            async def loop_type():
                return type(asyncio.get_running_loop()).__module__
            print(get_portal().call(loop_type()))
    """
    env = dict(os.environ, PYTHONPATH=ROOT, ASYNCBENTO_LOOP="uvloop")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), example_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("uvloop")


def test_streams_and_calls_from_several_threads_interleave(example_url: str) -> None:
    """Threads take turns driving the shared loop; none waits for another's stream to end."""
    with SyncHTTPClient(example_url) as client:
        chunks: list[str] = []
        sums: list[int] = []

        def stream() -> None:
            chunks.extend(client.stream_async(n=20, delay=0.05))

        def calls() -> None:
            sums.extend(client.add(i, 1) for i in range(50))

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(stream), pool.submit(calls), pool.submit(calls)]
            for future in futures:
                future.result(timeout=60)
        assert "".join(chunks) == "".join(f"tok{i}\n" for i in range(20))
        assert sorted(sums) == sorted([i + 1 for i in range(50)] * 2)
        assert client.add(2, 2) == 4


class _Steps:
    """An async generator of ``n`` items that records how far it was stepped and if it closed."""

    def __init__(self, n: int, fail_after: int | None = None) -> None:
        self.n, self.fail_after = n, fail_after
        self.stepped = 0
        self.closed = threading.Event()

    async def run(self) -> AsyncIterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_after:
                    raise ValueError(f"failed after {i} items")
                self.stepped += 1
                yield i
        finally:
            self.closed.set()


def test_iterate_steps_only_when_asked_by_default() -> None:
    steps = _Steps(100)
    items = get_portal().iterate(steps.run())
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    time.sleep(0.2)  # the loop has all the time it wants to run ahead: it must not
    assert steps.stepped == 5
    items.close()  # type: ignore[attr-defined]
    assert steps.closed.is_set()  # closed before close() returned


def test_iterate_with_read_ahead_runs_ahead_a_bounded_way() -> None:
    steps = _Steps(1000)
    items = get_portal().iterate(steps.run(), read_ahead=64)
    assert next(items) == 0
    time.sleep(0.2)
    assert 33 <= steps.stepped <= 1 + 64  # ran ahead, and paused at the read-ahead
    assert list(items) == list(range(1, 1000))  # in order, none lost or repeated
    assert steps.closed.is_set()


class _Sized(_Steps):
    """Steps of ``n`` items of ``size`` bytes each."""

    def __init__(self, n: int, size: int) -> None:
        super().__init__(n)
        self.size = size

    async def sized(self) -> AsyncIterator[bytes]:
        async for i in self.run():
            yield bytes([i % 256]) * self.size


@pytest.mark.parametrize(
    ("item_size", "most_ahead"),
    [(100, 10), (40_000, 1)],  # small items: ~10 fit in 1000 bytes; large ones: one at a time
)
def test_iterate_read_ahead_is_bounded_by_the_items_size_too(
    item_size: int, most_ahead: int
) -> None:
    steps = _Sized(300, item_size)
    items = get_portal().iterate(steps.sized(), read_ahead=1024, read_ahead_size=1000)
    assert next(items) == bytes([0]) * item_size
    time.sleep(0.2)  # the loop may run ahead: only as far as 1000 bytes (and one item more)
    assert most_ahead <= steps.stepped <= 1 + most_ahead + 1
    rest = list(items)  # taking them lets it go on, half a read-ahead at a time
    assert rest == [bytes([i % 256]) * item_size for i in range(1, 300)]
    assert steps.closed.is_set()


def test_iterate_measures_the_read_ahead_with_size_of() -> None:
    """Items that are not strings (Server-Sent Events) count by what ``size_of`` says."""
    steps = _Sized(300, 100)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for data in steps.sized():
            yield ServerSentEvent(data=data.decode("latin-1"))

    items = get_portal().iterate(
        events(), read_ahead=1024, read_ahead_size=1000, size_of=lambda event: len(event.data)
    )
    assert next(items).data == "\x00" * 100
    time.sleep(0.2)
    assert 10 <= steps.stepped <= 12  # 1000 characters of data ahead, as for 100-byte chunks
    assert [event.data for event in items] == [chr(i % 256) * 100 for i in range(1, 300)]


def test_iterate_sized_read_ahead_goes_on_after_half_is_taken() -> None:
    steps = _Sized(300, 100)
    items = get_portal().iterate(steps.sized(), read_ahead=1024, read_ahead_size=1000)
    assert next(items) == bytes([0]) * 100
    time.sleep(0.1)
    paused_at = steps.stepped
    taken = [next(items) for _ in range(6)]  # more than half of the ~10 waiting
    assert taken == [bytes([i]) * 100 for i in range(1, 7)]
    deadline = time.monotonic() + 5
    while steps.stepped == paused_at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert steps.stepped > paused_at  # it went on without the consumer waiting
    assert steps.stepped <= 1 + 6 + 11  # and stopped again at the size bound
    items.close()  # type: ignore[attr-defined]


def test_items_that_come_one_at_a_time_are_handed_over_at_once() -> None:
    """With a large read-ahead, an item that comes alone still wakes the waiting consumer
    (once the loop has nothing more to append), not when the read-ahead fills."""

    async def slow() -> AsyncIterator[float]:
        for _ in range(5):
            await asyncio.sleep(0.2)
            yield time.monotonic()

    delays = [time.monotonic() - made for made in get_portal().iterate(slow(), 1024)]
    assert len(delays) == 5
    assert max(delays) < 0.15, delays  # each came 200 ms apart: none waited for the next


def test_streams_leave_no_file_descriptor_behind() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def few() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    portal = get_portal()
    assert list(portal.iterate(few(), 1024)) == [0, 1, 2]
    before = open_fds()
    for _ in range(200):
        assert list(portal.iterate(few(), 1024)) == [0, 1, 2]
        for _item in portal.iterate(few(), 1024):  # left early
            break
    gc.collect()
    assert open_fds() <= before + 2


@pytest.mark.parametrize("read_ahead", [0, 64])
def test_iterate_left_early_closes_the_generator(read_ahead: int) -> None:
    steps = _Steps(1000)
    for item in get_portal().iterate(steps.run(), read_ahead):
        if item == 10:
            break
    assert steps.closed.is_set()
    assert steps.stepped <= 11 + read_ahead


@pytest.mark.parametrize("read_ahead", [0, 64])
def test_iterate_raises_after_the_items_before_the_error(read_ahead: int) -> None:
    steps = _Steps(100, fail_after=30)
    received = []
    with pytest.raises(ValueError, match="failed after 30 items"):
        for item in get_portal().iterate(steps.run(), read_ahead):
            received.append(item)
    assert received == list(range(30))


def test_a_stream_read_late_crosses_in_bursts(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        stream = client.stream_async(n=300)
        assert next(stream) == "tok0\n"
        time.sleep(0.3)  # the other 299 chunks arrive meanwhile
        assert list(stream) == [f"tok{i}\n" for i in range(1, 300)]
