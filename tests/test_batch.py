"""Batch submission: the engine on its own, then map, imap and map_tasks against the real
example service through both clients."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc
from asyncbento._batch import Overload, _in_order, _Source, collect, make_window, run_batch
from asyncbento._limiter import Adaptive

# ----------------------------------------------------------------------------- the engine


class Probe:
    """A fake call that records how many calls run at once and how far inputs are pulled."""

    def __init__(self, delay: float = 0.0, fail: frozenset[int] = frozenset()) -> None:
        self.delay = delay
        self.fail = fail
        self.running = 0
        self.max_running = 0
        self.pulled = 0

    def source(self, count: int | None) -> Iterator[int]:
        for i in range(count) if count is not None else itertools.count():
            self.pulled += 1
            yield i

    async def __call__(self, item: int) -> int:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay * random.random())
            if item in self.fail:
                raise ValueError(f"bad {item}")
            return item * 2
        finally:
            self.running -= 1


@pytest.mark.parametrize("ordered", [False, True])
async def test_engine_yields_every_index_once(ordered: bool) -> None:
    probe = Probe(delay=0.002, fail=frozenset({3, 50}))
    pairs = [
        pair
        async for pair in run_batch(
            probe, probe.source(300), concurrency=16, ordered=ordered, return_exceptions=True
        )
    ]
    indexes = [index for index, _ in pairs]
    assert sorted(indexes) == list(range(300))
    if ordered:
        assert indexes == list(range(300))
    for index, value in pairs:
        if index in (3, 50):
            assert isinstance(value, ValueError) and str(value) == f"bad {index}"
        else:
            assert value == index * 2
    assert probe.max_running == 16


@pytest.mark.parametrize("ordered", [False, True])
async def test_engine_window_with_a_slow_consumer(ordered: bool) -> None:
    probe = Probe(delay=0.001)
    concurrency = 8
    consumed = 0
    ahead = 0
    results = run_batch(probe, probe.source(None), concurrency=concurrency, ordered=ordered)
    async for _index, _value in results:
        consumed += 1
        await asyncio.sleep(0.003)  # slower than the calls: the window must hold the pulling
        ahead = max(ahead, probe.pulled - consumed)
        if consumed == 100:
            break
    await results.aclose()
    limit = concurrency * (2 if ordered else 1)
    assert ahead <= limit
    assert probe.pulled <= 100 + limit
    assert probe.running == 0  # closing the iterator cancelled the calls in flight


async def test_engine_first_failure_cancels_the_rest() -> None:
    probe = Probe()

    async def call(item: int) -> int:
        if item == 5:
            raise ValueError("five")
        return await probe(item) if item < 5 else await asyncio.sleep(30, item)

    started = asyncio.get_running_loop().time()
    with pytest.raises(ValueError, match="five") as raised:
        await collect(
            call,
            probe.source(1000),
            concurrency=10,
            return_exceptions=False,
            progress=False,
            description="t",
        )
    assert asyncio.get_running_loop().time() - started < 5
    assert probe.pulled <= 11  # no input pulled after the failure
    if sys.version_info >= (3, 11):
        assert "batch input #5" in "".join(raised.value.__notes__)


async def test_engine_failing_source_is_raised_at_once() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("the source broke")

    async def call(item: int) -> int:
        await asyncio.sleep(0.01)
        return item

    with pytest.raises(RuntimeError, match="the source broke"):
        await collect(
            call, source(), concurrency=4, return_exceptions=True, progress=False, description="t"
        )


async def test_engine_async_source_and_empty_input() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(50):
            await asyncio.sleep(0)
            yield i

    probe = Probe(delay=0.001)
    pairs = [pair async for pair in run_batch(probe, source(), concurrency=7, ordered=True)]
    assert pairs == [(i, i * 2) for i in range(50)]
    assert [pair async for pair in run_batch(probe, [], concurrency=7)] == []


async def test_engine_refuses_bad_arguments() -> None:
    probe = Probe()
    with pytest.raises(ValueError, match="concurrency"):
        await collect(
            probe, [1], concurrency=0, return_exceptions=False, progress=False, description="t"
        )
    for single in ({"a": 1}, "abc"):
        with pytest.raises(TypeError, match="single"):
            await collect(
                probe,
                single,
                concurrency=2,
                return_exceptions=False,
                progress=False,
                description="",
            )


async def test_progress_needs_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"asyncbento\[progress\]"):
        await collect(
            Probe(), [1], concurrency=2, return_exceptions=False, progress=True, description="t"
        )


async def test_progress_bar_counts_errors(capsys: pytest.CaptureFixture[str]) -> None:
    probe = Probe(fail=frozenset({1, 2}))
    results = await collect(
        probe, range(20), concurrency=4, return_exceptions=True, progress=True, description="t"
    )
    assert len(results) == 20
    err = capsys.readouterr().err
    assert "20/20" in err and "errors=2" in err
    assert re.search(r"window=\d+/4 refused=0 errors=2", err)


class Capped:
    """A fake service that refuses (429, as BentoML's ``max_concurrency``) beyond ``capacity``."""

    def __init__(self, capacity: int, delay: float = 0.005) -> None:
        self.capacity = capacity
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.refused = 0
        self.attempts: dict[int, int] = {}

    async def __call__(self, item: int) -> int:
        self.attempts[item] = self.attempts.get(item, 0) + 1
        if self.running >= self.capacity:
            self.refused += 1
            raise _refusal(429)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            return item * 2
        finally:
            self.running -= 1


def _refusal(status: int, retry_after: float | None = None) -> Overload:
    """What the client's side raises for a 429 or 503 answer."""
    error = exc.exception_for_status(status)("refused", error_code=status)
    error.status = status
    error.retry_after = retry_after
    return Overload(error, resend=True, retry_after=retry_after)


@pytest.mark.parametrize("ordered", [False, True])
async def test_engine_requeues_refused_inputs_and_loses_none(ordered: bool) -> None:
    service = Capped(capacity=4)
    pairs = [pair async for pair in run_batch(service, range(300), concurrency=64, ordered=ordered)]
    assert sorted(pairs) == [(i, i * 2) for i in range(300)]
    if ordered:
        assert [index for index, _ in pairs] == list(range(300))
    assert service.refused > 0  # the ceiling of 64 was above the capacity...
    assert service.refused < 300  # ...and the window came down instead of hammering
    assert service.max_running == 4


async def test_engine_honours_retry_after_then_recovers() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()
    refused_once: set[int] = set()

    async def call(item: int) -> int:
        calls.append(loop.time())
        if item == 5 and item not in refused_once:
            refused_once.add(item)
            raise _refusal(503, retry_after=0.3)
        await asyncio.sleep(0.001)
        return item

    started = loop.time()
    results = await collect(
        call, range(40), concurrency=8, return_exceptions=False, progress=False, description="t"
    )
    assert results == list(range(40))
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert max(gaps) >= 0.25  # nothing was sent during the Retry-After
    assert loop.time() - started < 2


async def test_engine_overload_budget_ends_in_a_clear_error() -> None:
    sent = 0

    async def call(item: int) -> int:
        nonlocal sent
        sent += 1
        raise _refusal(429)

    window = make_window(4, Adaptive(max_stall=0.2))
    started = asyncio.get_running_loop().time()
    pairs = [
        pair async for pair in run_batch(call, range(50), window=window, return_exceptions=True)
    ]
    assert asyncio.get_running_loop().time() - started < 2  # not one backoff per input
    assert sorted(index for index, _ in pairs) == list(range(50))
    for _, error in pairs:
        assert isinstance(error, exc.BatchOverloaded) and error.error_code == 503
        assert isinstance(error.__cause__, exc.TooManyRequests)
        assert "Adaptive.max_stall" in str(error)
    assert len({id(error) for _, error in pairs}) == 50  # one error each (each gets its notes)
    assert all(error.batch_input == index for index, error in pairs)  # to send again later
    assert sent < 50  # once the budget is spent, what is left fails without being sent


async def test_engine_fixed_window_treats_overload_as_a_failure() -> None:
    service = Capped(capacity=2)
    results = await collect(
        service,
        range(20),
        concurrency=8,
        adaptive=False,
        return_exceptions=True,
        progress=False,
        description="t",
    )
    failed = [r for r in results if isinstance(r, exc.TooManyRequests)]
    assert failed and len(failed) == service.refused  # not sent again: exactly as asked
    assert all(r == i * 2 for i, r in enumerate(results) if not isinstance(r, Exception))
    assert max(service.attempts.values()) == 1


async def test_engine_read_timeouts_shrink_the_window_but_fail_the_input() -> None:
    async def call(item: int) -> int:
        if item % 2:
            raise Overload(exc.ReadTimeout("slow", error_code=504), resend=False)
        await asyncio.sleep(0.001)
        return item

    window = make_window(16)
    results = [
        pair async for pair in run_batch(call, range(40), window=window, return_exceptions=True)
    ]
    assert len(results) == 40
    assert all(isinstance(v, exc.ReadTimeout) for i, v in results if i % 2)
    assert window.refused == 20 and window.size < 16


async def test_engine_huge_concurrency_spawns_workers_only_for_inputs() -> None:
    tasks_seen = 0

    async def call(item: int) -> int:
        nonlocal tasks_seen
        tasks_seen = max(tasks_seen, len(asyncio.all_tasks()))
        await asyncio.sleep(0.2)
        return item

    loop = asyncio.get_running_loop()
    for adaptive in (True, False):
        started = loop.time()
        results = await collect(
            call,
            (i for i in range(8)),  # a generator: no len() to cap the workers with
            concurrency=10**6,
            adaptive=adaptive,
            return_exceptions=False,
            progress=False,
            description="t",
        )
        assert results == list(range(8))
        assert loop.time() - started < 0.35  # all 8 in flight at once, none waited
    assert tasks_seen <= 2 * 8 + 1  # workers at most twice the inputs, and the test


@pytest.mark.parametrize("concurrency", [2.5, "8", True, None])
async def test_engine_refuses_non_integer_concurrency(concurrency: Any) -> None:
    with pytest.raises(exc.ArgumentError, match="concurrency must be an integer"):
        await collect(
            Probe(),
            [1],
            concurrency=concurrency,
            return_exceptions=False,
            progress=False,
            description="t",
        )


async def test_feeder_alone_numbers_inputs_hands_back_first_and_bounds_the_buffer() -> None:
    source = _Source(iter("abcd"), 2, asyncio.get_running_loop())
    assert await source.take() == (0, "a")
    assert await source.take() == (1, "b")
    waiting = asyncio.ensure_future(source.take())  # a third pull waits for a slot
    await asyncio.sleep(0)
    assert not waiting.done()
    source.give_back(0, "a")  # a refused input keeps its slot and comes out first
    assert await source.take() == (0, "a")
    source.release()  # the consumer took a result: its slot goes to the waiting pull
    assert await waiting == (2, "c")
    source.release()
    assert await source.take() == (3, "d")
    source.release()
    source.release()
    assert await source.take() is None and source.done


async def test_ordering_stage_alone() -> None:
    async def completed() -> AsyncIterator[tuple[int, Any, BaseException | None]]:
        for index in (2, 0, 3, 1, 4):
            yield index, index * 10, None

    assert [index async for index, _, _ in _in_order(completed())] == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- real service


async def test_map_2000_inputs_in_order(client: Any) -> None:
    texts = [" ".join(["word"] * (i % 7 + 1)) + f" #{i}" for i in range(2000)]
    results = await client.map("summarize", ({"text": t} for t in texts), concurrency=64)
    assert results == [f"{len(t.split())} words: {t[:20]}" for t in texts]


async def test_map_accepts_the_bound_method(client: Any, client_kind: str) -> None:
    method = client.add.sync if client_kind == "sync" else client.add
    results = await client.map(method, [{"a": i, "b": 1} for i in range(100)], concurrency=8)
    assert results == [i + 1 for i in range(100)]


async def test_map_root_inputs_and_streams(client: Any) -> None:
    assert await client.map("shout", ["ab", "cd", "é"]) == ["AB", "CD", "É"]
    assert await client.map("stream_sync", [{"n": 2}, {"n": 3, "prefix": "x"}]) == [
        "tok0\ntok1\n",
        "x0\nx1\nx2\n",
    ]


async def test_return_exceptions_accounts_for_every_input(client: Any) -> None:
    inputs: list[Any] = []
    for i in range(80):
        kind = i % 10
        if kind == 3:
            inputs.append({"a": "not a number"})  # rejected by the server's validation
        elif kind == 5:
            inputs.append({"a": 1, "unknown": 2})  # unknown argument: caught before sending
        elif kind == 6:
            inputs.append({"b": 1})  # missing argument
        elif kind == 7:
            inputs.append(["not", "a", "dict"])  # wrong shape
        else:
            inputs.append({"a": i})
    results = await client.map("add", inputs, concurrency=16, return_exceptions=True)
    assert len(results) == 80
    for i, result in enumerate(results):
        if i % 10 == 3:
            assert isinstance(result, exc.InvalidArgument)
        elif i % 10 in (5, 6, 7):
            assert isinstance(result, TypeError)
        else:
            assert result == i
    codes = [400, 404, 422, 500, 409]
    failures = await client.map(
        "fail", [{"code": c, "message": f"m{c}"} for c in codes], return_exceptions=True
    )
    expected = [
        exc.InvalidArgument,
        exc.NotFound,
        exc.UnprocessableEntity,
        exc.InternalServerError,
        exc.Conflict,
    ]
    for code, failure, kind in zip(codes, failures, expected, strict=True):
        assert type(failure) is kind and int(failure.error_code) == code


async def test_first_failure_is_raised_and_the_rest_cancelled(client: Any) -> None:
    pulled = 0

    def inputs() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield {"delay": "not a number"} if i == 3 else {"delay": 3.0}

    started = asyncio.get_running_loop().time()
    with pytest.raises(exc.InvalidArgument):
        await client.map("slow", inputs(), concurrency=8)
    assert asyncio.get_running_loop().time() - started < 2.5  # nobody waited for a slow call
    assert pulled <= 9


async def test_imap_unordered_and_ordered(client: Any) -> None:
    inputs = [{"delay": (i % 4) * 0.05} for i in range(40)]
    unordered = [pair async for pair in client.imap("slow", inputs, concurrency=10)]
    assert sorted(index for index, _ in unordered) == list(range(40))
    assert all(value == {"slept": (i % 4) * 0.05} for i, value in unordered)
    ordered = [pair async for pair in client.imap("slow", inputs, concurrency=10, ordered=True)]
    assert ordered == [(i, {"slept": (i % 4) * 0.05}) for i in range(40)]


class Endless:
    """Inputs ``{"a": 0}``, ``{"a": 1}``, ... without end, counting how many were pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[dict[str, int]]:
        for i in itertools.count():
            self.pulled += 1
            yield {"a": i}


@pytest.mark.parametrize("ordered", [False, True])
async def test_imap_pulls_lazily_from_an_endless_generator(example_url: str, ordered: bool) -> None:
    endless = Endless()
    async with AsyncHTTPClient(example_url) as client:
        seen = []
        async for index, value in client.imap("add", endless, concurrency=8, ordered=ordered):
            seen.append((index, value))
            if len(seen) == 50:
                break
    assert all(index == value for index, value in seen)
    assert 50 <= endless.pulled <= 50 + 8 * (2 if ordered else 1)


async def test_imap_from_an_async_iterable(example_url: str) -> None:
    async def source() -> AsyncIterator[dict[str, int]]:
        for i in range(30):
            await asyncio.sleep(0)
            yield {"a": i}

    async with AsyncHTTPClient(example_url) as client:
        pairs = [pair async for pair in client.imap("add", source(), ordered=True)]
    assert pairs == [(i, i) for i in range(30)]


async def test_a_view_maps_with_its_own_options(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        quick = client.with_options(timeout=0.3, retry=None)
        results = await quick.map(
            client.slow, [{"delay": 2.0}, {"delay": 0.0}], return_exceptions=True
        )
    assert isinstance(results[0], exc.TimeoutException)
    assert results[1] == {"slept": 0.0}


def test_sync_map_and_imap(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        assert client.map(client.add, ({"a": i, "b": 2} for i in range(300))) == [
            i + 2 for i in range(300)
        ]
        pairs = client.imap(client.add, [{"a": i} for i in range(20)], ordered=True)
        assert next(pairs) == (0, 0)
        assert list(pairs) == [(i, i) for i in range(1, 20)]
        assert client.map("add", []) == []

        endless = Endless()
        stream = client.imap("add", endless, concurrency=4)
        first = [pair for pair, _ in zip(stream, range(10), strict=False)]
        stream.close()  # type: ignore[attr-defined]
        assert len(first) == 10 and endless.pulled <= 10 + 4 + 1
        assert client.add(a=1) == 1  # the client still works after an abandoned imap


async def test_task_batch(client: Any) -> None:
    inputs = [{"x": i, "delay": 0.05} for i in range(24)] + [{"x": -1, "delay": 0.0}, [1]]
    results = await client.map_tasks(
        "slow_square", inputs, concurrency=8, return_exceptions=True, timeout=30
    )
    assert [r["square"] for r in results[:24]] == [i * i for i in range(24)]
    assert isinstance(results[24], exc.InvalidArgument)
    assert isinstance(results[25], TypeError)


async def test_map_tasks_refuses_a_plain_endpoint(client: Any) -> None:
    with pytest.raises(TypeError, match="not a task endpoint"):
        await client.map_tasks("add", [{"a": 1}])


async def test_unknown_endpoint_name(client: Any) -> None:
    with pytest.raises(exc.NotFound):
        await client.map("nope", [{}])


async def test_progress_bar(example_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with AsyncHTTPClient(example_url) as client:
        results = await client.map(
            "add",
            [{"a": i} for i in range(30)] + [{"a": "x"}],
            progress=True,
            return_exceptions=True,
        )
    assert results[:30] == list(range(30)) and isinstance(results[30], exc.InvalidArgument)
    err = capsys.readouterr().err
    assert "31/31" in err and "errors=1" in err
