"""Transport options against small local servers: Unix sockets, TLS, proxies, headers."""

from __future__ import annotations

import asyncio
import pathlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme
from aiohttp import web

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc

SCHEMA = {
    "name": "mini",
    "type": "service",
    "routes": [
        {
            "name": "hello",
            "route": "/hello",
            "batchable": False,
            "input": {
                "properties": {"name": {"title": "Name", "type": "string"}},
                "required": ["name"],
                "title": "Input",
                "type": "object",
            },
            "output": {"type": "string"},
            "is_task": False,
        },
        {
            "name": "__call__",
            "route": "/invoke",
            "batchable": False,
            "input": {
                "properties": {"name": {"title": "Name", "type": "string"}},
                "required": ["name"],
                "title": "Input",
                "type": "object",
            },
            "output": {"type": "string"},
            "is_task": False,
        },
    ],
    "paths": {"/hello": {"mounted": False}, "/invoke": {"mounted": False}},
}


def mini_app(seen: list[web.Request]) -> web.Application:
    async def readyz(request: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def schema(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(SCHEMA)

    async def hello(request: web.Request) -> web.Response:
        seen.append(request)
        body = await request.json()
        return web.Response(text=f"hello {body['name']}")

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/schema.json", schema)
    app.router.add_post("/hello", hello)
    app.router.add_post("/invoke", hello)
    return app


async def start(app: web.Application, site_factory: Any) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await site_factory(runner).start()
    return runner


@pytest.fixture
async def unix_server(tmp_path: pathlib.Path) -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []
    path = str(tmp_path / "bento.sock")
    runner = await start(mini_app(seen), lambda r: web.UnixSite(r, path))
    yield f"file://{path}", seen
    await runner.cleanup()


async def test_unix_socket_async(unix_server: tuple[str, list[web.Request]]) -> None:
    url, seen = unix_server
    async with AsyncHTTPClient(url) as client:
        assert await client.hello(name="uds") == "hello uds"
    assert seen[-1].path == "/hello"


async def test_call_endpoint_makes_the_client_callable(
    unix_server: tuple[str, list[web.Request]],
) -> None:
    url, seen = unix_server
    async with AsyncHTTPClient(url) as client:
        assert await client(name="callable") == "hello callable"
        assert seen[-1].path == "/invoke"

    def use() -> str:
        with SyncHTTPClient(url) as sync_client:
            return sync_client("sync callable")  # type: ignore[no-any-return]

    assert await asyncio.to_thread(use) == "hello sync callable"


async def test_unix_socket_sync(unix_server: tuple[str, list[web.Request]]) -> None:
    url, _ = unix_server

    def use() -> str:
        with SyncHTTPClient(url) as client:
            return client.hello("sync uds")  # type: ignore[no-any-return]

    assert await asyncio.to_thread(use) == "hello sync uds"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(
    ca: trustme.CA, unused_tcp_port: int
) -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    runner = await start(
        mini_app(seen),
        lambda r: web.TCPSite(r, "127.0.0.1", unused_tcp_port, ssl_context=context),
    )
    yield f"https://127.0.0.1:{unused_tcp_port}", seen
    await runner.cleanup()


async def test_tls_verification_is_on_by_default(
    tls_server: tuple[str, list[web.Request]],
) -> None:
    url, seen = tls_server
    with pytest.raises(exc.TLSError) as info:
        async with AsyncHTTPClient(url, server_ready_timeout=0):
            pass
    assert info.value.attempts == 1  # a certificate failure is not retried
    assert seen == []


async def test_tls_with_ca_bundle_context_or_disabled(
    tls_server: tuple[str, list[web.Request]], ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    url, _ = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    for verify in (str(bundle), context, False):
        async with AsyncHTTPClient(url, verify=verify) as client:
            assert await client.hello(name="tls") == "hello tls"


async def test_sync_client_tls_failure_is_typed(tls_server: tuple[str, list[web.Request]]) -> None:
    url, _ = tls_server
    with pytest.raises(exc.TLSError):
        await asyncio.to_thread(SyncHTTPClient, url, server_ready_timeout=0)


async def test_headers_token_and_user_agent(unix_server: tuple[str, list[web.Request]]) -> None:
    url, seen = unix_server
    async with AsyncHTTPClient(url, token="tok-123", headers={"X-Trace": "abc"}) as client:
        assert await client.hello(name="h") == "hello h"
    request = seen[-1]
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["X-Trace"] == "abc"
    assert request.headers["User-Agent"].startswith("asyncbento/")
    assert request.headers["Content-Type"] == "application/json"


@pytest.fixture
async def forward_proxy(unused_tcp_port: int) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP forward proxy that answers for the made-up host itself."""
    seen: list[str] = []
    inner = mini_app([])

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.url))
        route = {"/readyz": "readyz", "/schema.json": "schema", "/hello": "hello"}
        if request.url.path not in route:
            return web.Response(status=404)
        for resource in inner.router.resources():
            info = resource.get_info()
            if info.get("path") == request.url.path:
                for item in resource:
                    if item.method == request.method:
                        return await item.handler(request)  # type: ignore[no-any-return]
        return web.Response(status=405)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = await start(app, lambda r: web.TCPSite(r, "127.0.0.1", unused_tcp_port))
    yield f"http://127.0.0.1:{unused_tcp_port}", seen
    await runner.cleanup()


async def test_proxy_from_environment_only_with_trust_env(
    forward_proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, seen = forward_proxy
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with AsyncHTTPClient("http://bento.asyncbento.test", trust_env=True) as client:
        assert await client.hello(name="via proxy") == "hello via proxy"
    assert "http://bento.asyncbento.test/hello" in seen
    without = AsyncHTTPClient(
        "http://bento.asyncbento.test", trust_env=False, retry=None, server_ready_timeout=0
    )
    with pytest.raises(exc.ConnectError):
        async with without:
            pass
