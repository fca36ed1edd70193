"""Integration: streaming endpoints of a real `bentoml serve`, through both clients."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient
from asyncbento import exceptions as exc


async def collect(stream: Any) -> list[str]:
    return [item async for item in stream]


@pytest.mark.parametrize("endpoint", ["stream_sync", "stream_async"])
async def test_stream_yields_all_text(client: Any, endpoint: str) -> None:
    chunks = await collect(getattr(client, endpoint)(n=5, prefix="w"))
    assert all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == "".join(f"w{i}\n" for i in range(5))


async def test_thousand_chunk_stream(client: Any) -> None:
    chunks = await collect(client.stream_async(n=1000))
    assert "".join(chunks) == "".join(f"tok{i}\n" for i in range(1000))


async def test_multibyte_characters_never_split(client: Any) -> None:
    chunks = await collect(client.stream_unicode(n=200))
    expected = "".join(f"héllo-🙂-日本-{i}\n" for i in range(200))
    assert "".join(chunks) == expected
    assert all("\ufffd" not in c for c in chunks)


async def read_late(stream: Any, pause: float = 0.5) -> list[Any]:
    """Every item, the consumer sleeping after the first one while the server writes the rest."""
    items = []
    async for item in stream:
        if not items:
            await asyncio.sleep(pause)
        items.append(item)
    return items


@pytest.mark.parametrize("endpoint", ["stream_async", "stream_sync"])
async def test_a_late_reader_gets_every_item(client: Any, endpoint: str) -> None:
    items = await read_late(getattr(client, endpoint)(n=40))
    assert items == [f"tok{i}\n" for i in range(40)]  # one item per server-side yield


async def test_json_objects_parse_item_by_item(client: Any) -> None:
    items = await read_late(client.stream_json(n=30))
    assert [json.loads(item) for item in items] == [
        {"index": i, "token": f"tok{i}", "last": i == 29} for i in range(30)
    ]


async def test_multibyte_items_keep_their_boundaries(client: Any) -> None:
    items = await read_late(client.stream_unicode(n=60))
    assert items == [f"héllo-🙂-日本-{i}\n" for i in range(60)]


async def test_async_stream_returns_async_generator_without_sending(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        stream = client.stream_async(n=3)
        assert inspect.isasyncgen(stream)
        assert "".join([c async for c in stream]) == "tok0\ntok1\ntok2\n"


async def test_chunks_arrive_as_produced(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_at = None
        async for _ in client.stream_async(n=4, delay=0.4):
            if first_at is None:
                first_at = loop.time() - started
        total = loop.time() - started
    assert first_at is not None and first_at < 1.0
    assert total >= 1.2


async def test_early_break_then_more_calls(client: Any) -> None:
    for _ in range(20):
        async for chunk in client.stream_async(n=1000):
            assert chunk.startswith("tok")
            break
    assert await client.add(1, 2) == 3
    assert "".join(await collect(client.stream_async(n=3))) == "tok0\ntok1\ntok2\n"


async def test_many_early_exits_do_not_grow_the_pool(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        for _ in range(500):
            stream = client.stream_async(n=1000)
            async for _chunk in stream:
                break
            await stream.aclose()
        connector = client._core.transport.session.connector
        assert len(connector._acquired) == 0
        open_connections = sum(len(v) for v in connector._conns.values())
        assert open_connections <= client._core.transport._limits.max_connections
        assert await client.add(2, 2) == 4


async def test_cancelling_the_consumer_releases_the_connection(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:

        async def consume() -> None:
            async for _ in client.stream_async(n=100, delay=0.05):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        connector = client._core.transport.session.connector
        assert len(connector._acquired) == 0
        assert await client.add(3, 3) == 6


async def test_error_before_first_yield_raises_on_first_iteration(client: Any) -> None:
    stream = client.stream_fail(n=3, fail_before=True)
    with pytest.raises(exc.InternalServerError):
        await collect(stream)


async def test_error_status_is_typed_for_streams(client: Any) -> None:
    with pytest.raises(exc.InvalidArgument):
        await collect(client.stream_async(n="many"))
