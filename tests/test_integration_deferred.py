"""The async client used without ``async with``, as BentoML's documentation also shows it.

The first awaited call sets the client up (readiness wait, schema) exactly as ``async with``
would; afterwards the client's attributes are the real endpoint methods.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, AsyncTask
from asyncbento import exceptions as exc


async def test_first_call_sets_the_client_up(example_url: str) -> None:
    client = AsyncHTTPClient(example_url)
    try:
        assert await client.summarize(text="one two three") == "3 words: one two three"
        assert client.service_name == "example_service"  # set up now
        assert "summarize" in client.endpoints
        assert await client.add(2, b=3) == 5
    finally:
        await client.close()


async def test_every_kind_of_call_before_set_up(example_url: str) -> None:
    async def fresh(call: Any) -> Any:
        client = AsyncHTTPClient(example_url)
        try:
            return await call(client)
        finally:
            await client.close()

    async def stream(client: Any) -> list[str]:
        return [chunk async for chunk in client.stream_sync(n=3, prefix="s")]

    async def task(client: Any) -> Any:
        submitted = await client.slow_square.submit(x=6, delay=0.0)
        assert isinstance(submitted, AsyncTask)
        return await submitted.result(timeout=30)

    async def by_name(client: Any) -> Any:
        return await client.call("add", 1, 2)

    async def batch(client: Any) -> Any:
        return await client.map("add", [{"a": i} for i in range(5)])

    async def lazy_batch(client: Any) -> Any:
        return sorted([pair async for pair in client.imap(client.add, [{"a": 1}, {"a": 2}])])

    async def root(client: Any) -> Any:
        return await client.shout("quiet")

    assert "".join(await fresh(stream)) == "s0\ns1\ns2\n"
    assert await fresh(task) == {"x": 6, "square": 36}
    assert await fresh(by_name) == 3
    assert await fresh(batch) == [0, 1, 2, 3, 4]
    assert await fresh(lazy_batch) == [(0, 1), (1, 2)]
    assert await fresh(root) == "QUIET"


async def test_concurrent_first_calls_share_one_set_up(example_url: str) -> None:
    client = AsyncHTTPClient(example_url)
    try:
        results = await asyncio.gather(*(client.add(a=i, b=1) for i in range(20)))
        assert results == [i + 1 for i in range(20)]
        assert client.add is client._methods["add"]  # the real method from now on
    finally:
        await client.close()


async def test_mistakes_before_set_up_are_reported_when_awaited(example_url: str) -> None:
    client = AsyncHTTPClient(example_url)
    try:
        with pytest.raises(AttributeError, match="no_such_endpoint"):
            await client.no_such_endpoint(x=1)
        with pytest.raises(exc.NotFound):
            await client.call("no_such_endpoint")
    finally:
        await client.close()
    for misuse in ("await a stream", "iterate a call"):
        client = AsyncHTTPClient(example_url)
        try:
            if misuse == "await a stream":
                with pytest.raises(TypeError, match="async for"):
                    await client.stream_sync(n=2)
            else:
                with pytest.raises(TypeError, match="await"):
                    async for _ in client.summarize(text="x"):
                        pass
        finally:
            await client.close()


async def test_a_server_that_is_not_there_fails_the_first_call() -> None:
    client = AsyncHTTPClient("http://127.0.0.1:9", server_ready_timeout=0.3)
    try:
        with pytest.raises(exc.ServiceUnavailable):
            await client.summarize(text="x")
    finally:
        await client.close()


def test_one_client_across_successive_event_loops(example_url: str) -> None:
    # A module-level client used by two asyncio.run() calls: the second loop gets its own
    # connections instead of the first loop's dead ones.
    client = AsyncHTTPClient(example_url)

    async def use(a: int) -> Any:
        return await client.add(a, 1), "".join([c async for c in client.stream_sync(n=2)])

    assert asyncio.run(use(1)) == (2, "tok0\ntok1\n")
    assert asyncio.run(use(5)) == (6, "tok0\ntok1\n")
    asyncio.run(client.close())
    assert client.closed
