"""Batch submission: map, imap and map_tasks against the real example service, both clients."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc


async def test_map_2000_inputs_in_order(client: Any) -> None:
    inputs = [{"a": i, "b": 7} for i in range(2000)]
    results = await client.map("add", inputs, concurrency=64)
    assert results == [i + 7 for i in range(2000)]


async def test_map_accepts_the_bound_method_and_a_generator(client: Any, client_kind: str) -> None:
    method = client.add.sync if client_kind == "sync" else client.add
    results = await client.map(method, ({"a": i} for i in range(100)), concurrency=8)
    assert results == list(range(100))


async def test_map_root_inputs_and_streams(client: Any) -> None:
    assert await client.map("shout", ["ab", "cd", "é"]) == ["AB", "CD", "É"]
    assert await client.map("stream_sync", [{"n": 2}, {"n": 3, "prefix": "x"}]) == [
        "tok0\ntok1\n",
        "x0\nx1\nx2\n",
    ]


async def test_return_exceptions_accounts_for_every_input(client: Any) -> None:
    inputs: list[Any] = []
    for i in range(60):
        if i % 10 == 3:
            inputs.append({"a": "not a number"})  # server-side validation error
        elif i % 10 == 5:
            inputs.append({"a": 1, "unknown": 2})  # bad argument, caught before sending
        elif i % 10 == 7:
            inputs.append(["not", "a", "dict"])  # wrong input shape
        else:
            inputs.append({"a": i})
    results = await client.map("add", inputs, concurrency=16, return_exceptions=True)
    assert len(results) == 60
    for i, result in enumerate(results):
        if i % 10 == 3:
            assert isinstance(result, exc.InvalidArgument)
        elif i % 10 in (5, 7):
            assert isinstance(result, TypeError)
        else:
            assert result == i


async def test_first_failure_is_raised_and_the_rest_cancelled(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        inputs = [{"delay": 2.0}] * 10 + [{"code": 400}]
        calls = [client.slow] * 10 + [client.fail]

        async def run(item: Any) -> Any:
            return await item[0](**item[1])

        from asyncbento._batch import collect

        started = asyncio.get_running_loop().time()
        with pytest.raises(exc.InvalidArgument):
            await collect(
                run,
                list(zip(calls, inputs, strict=True)),
                concurrency=11,
                return_exceptions=False,
                progress=False,
                description="t",
            )
        assert asyncio.get_running_loop().time() - started < 1.5
        with pytest.raises(exc.InvalidArgument):
            await client.map("fail", [{"code": 400}] + [{"code": 200}] * 5)


async def test_imap_unordered_and_ordered(client: Any) -> None:
    inputs = [{"delay": (i % 4) * 0.05} for i in range(40)]
    unordered = [pair async for pair in client.imap("slow", inputs, concurrency=10)]
    assert sorted(index for index, _ in unordered) == list(range(40))
    assert all(value == {"slept": (i % 4) * 0.05} for i, value in unordered)
    ordered = [pair async for pair in client.imap("slow", inputs, concurrency=10, ordered=True)]
    assert [index for index, _ in ordered] == list(range(40))


async def test_imap_pulls_lazily_from_an_endless_generator(example_url: str) -> None:
    pulled = 0

    def endless() -> Iterator[dict[str, int]]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield {"a": i}

    async with AsyncHTTPClient(example_url) as client:
        seen = []
        async for index, value in client.imap("add", endless(), concurrency=8):
            seen.append((index, value))
            if len(seen) == 50:
                break
    assert sorted(i for i, _ in seen) == sorted(v for _, v in seen)
    assert 50 <= pulled <= 50 + 8 + 1


async def test_imap_from_an_async_iterable(example_url: str) -> None:
    async def source() -> AsyncIterator[dict[str, int]]:
        for i in range(30):
            await asyncio.sleep(0)
            yield {"a": i}

    async with AsyncHTTPClient(example_url) as client:
        pairs = [pair async for pair in client.imap("add", source(), ordered=True)]
    assert pairs == [(i, i) for i in range(30)]


def test_sync_imap_is_a_generator(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        pairs = client.imap(client.add, [{"a": i} for i in range(20)], ordered=True)
        assert next(pairs) == (0, 0)
        assert list(pairs) == [(i, i) for i in range(1, 20)]
        assert client.map("add", []) == []


async def test_task_batch(client: Any) -> None:
    inputs = [{"x": i, "delay": 0.05} for i in range(12)] + [{"x": -1, "delay": 0.0}]
    results = await client.map_tasks(
        "slow_square", inputs, concurrency=6, return_exceptions=True, timeout=30
    )
    assert [r["square"] for r in results[:12]] == [i * i for i in range(12)]
    assert isinstance(results[12], exc.InvalidArgument)


async def test_map_tasks_refuses_a_plain_endpoint(client: Any) -> None:
    with pytest.raises(TypeError, match="not a task endpoint"):
        await client.map_tasks("add", [{"a": 1}])


async def test_unknown_endpoint_name(client: Any) -> None:
    with pytest.raises(exc.NotFound):
        await client.map("nope", [{}])


async def test_progress_bar(example_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with AsyncHTTPClient(example_url) as client:
        results = await client.map(
            "add", [{"a": i} for i in range(30)], progress=True, return_exceptions=True
        )
    assert results == list(range(30))
    assert "30/30" in capsys.readouterr().err
