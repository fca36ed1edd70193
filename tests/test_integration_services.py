"""Integration: token auth, name clashes and delayed readiness on real BentoML servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from _clients import close_client, open_client

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc
from asyncbento.testing import BentoServer


async def test_token_is_sent_as_bearer(client_kind: str, auth_server: Any) -> None:
    client = await open_client(client_kind, auth_server.url, token=auth_server.token)
    try:
        assert await client.whoami() == {"ok": True}
        assert await client.echo(data={"k": 1}) == {"k": 1}
        assert auth_server.token not in repr(client)
    finally:
        await close_client(client)


async def test_token_from_environment(
    client_kind: str, auth_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTO_CLOUD_API_KEY", auth_server.token)
    client = await open_client(client_kind, auth_server.url)
    try:
        assert await client.whoami() == {"ok": True}
    finally:
        await close_client(client)


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_unauthorized(
    client_kind: str, auth_server: Any, token: str | None
) -> None:
    with pytest.raises(exc.Unauthorized) as info:
        await open_client(client_kind, auth_server.url, token=token)
    error = info.value
    assert error.error_code == 401
    assert "Failed to fetch schema" in error.message
    assert "bearer token" in error.message
    assert auth_server.token not in str(error) and auth_server.token not in repr(error)
    assert error.attempts == 1


async def test_probe_is_open_without_token(auth_server: Any) -> None:
    client = AsyncHTTPClient(auth_server.url)
    try:
        assert await client.is_ready() is True
    finally:
        await client.close()


async def test_clashing_endpoint_names_get_api_prefix(client_kind: str, clash_url: str) -> None:
    client = await open_client(client_kind, clash_url)
    try:
        assert await client.api_url(x=1) == 2
        assert await client.api_with_options(x=1) == 5
        assert await client.plain(x=7) == 7
        assert await client.call("url", x=5) == 6
        assert await client.call("with_options", x=5) == 9
        assert client.url == clash_url  # the client's own attribute is untouched
        assert await client.api_map(x=1) == 31  # the endpoint named api_map keeps its name
        assert await client.api_api_map(x=1) == 4  # so `map` moves one prefix further
        assert await client.call("map", x=1) == 4
        method = client.api_api_map
        assert await client.map(getattr(method, "sync", method), [{"x": 2}]) == [5]
    finally:
        await close_client(client)


async def test_waits_for_a_slow_server_to_become_ready(
    client_kind: str, slow_ready_server_factory: Callable[[float], BentoServer]
) -> None:
    server = slow_ready_server_factory(4.0)
    probe = AsyncHTTPClient(server.url)
    try:
        assert await probe.is_ready() is False
    finally:
        await probe.close()
    started = time.monotonic()
    client = await open_client(client_kind, server.url, server_ready_timeout=60)
    try:
        assert await client.ping() == "pong"
    finally:
        await close_client(client)
    assert time.monotonic() - started < 30


async def test_ready_timeout_expires_on_a_slow_server(
    client_kind: str, slow_ready_server_factory: Callable[[float], BentoServer]
) -> None:
    server = slow_ready_server_factory(60.0)
    started = time.monotonic()
    with pytest.raises(exc.ServiceUnavailable) as info:
        await open_client(client_kind, server.url, server_ready_timeout=1.5)
    assert "not ready after 1.5 seconds" in info.value.message
    assert time.monotonic() - started < 5
    # server_ready_timeout=0 skips the wait: the schema is served while not ready.
    client = await open_client(client_kind, server.url, server_ready_timeout=0)
    try:
        assert await client.ping() == "pong"
    finally:
        await close_client(client)


def test_sync_client_created_in_a_thread_pool(example_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def make_and_call(i: int) -> int:
        with SyncHTTPClient(example_url) as client:
            return client.add(i, 1)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(make_and_call, range(16))) == [i + 1 for i in range(16)]


async def test_async_client_reused_across_many_tasks(example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        session = client._core.transport.session
        await asyncio.gather(*(client.add(i, 0) for i in range(300)))
        assert client._core.transport.session is session
