"""Fault handling with aioresponses: statuses, Retry-After and transport errors, both clients.

Each test asserts the exception type and how many requests were made.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from asyncbento import AsyncHTTPClient, RetryPolicy, SyncHTTPClient
from asyncbento import exceptions as exc

BASE = "http://bento.mock:3000"
SCHEMA = {
    "name": "mock",
    "routes": [
        {
            "name": "echo",
            "route": "/echo",
            "input": {"properties": {"data": {"type": "object"}}, "type": "object"},
            "output": {"type": "object", "additionalProperties": True},
            "is_task": False,
        },
        {
            "name": "job",
            "route": "/job",
            "input": {"properties": {"x": {"type": "integer"}}, "type": "object"},
            "output": {"type": "object", "additionalProperties": True},
            "is_task": True,
        },
    ],
}
FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` aiohttp 3.14 needs."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioresponses.core

    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr(aioresponses.core, "ClientResponse", _CompatResponse)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        mock.get(f"{BASE}/schema.json", payload=SCHEMA, repeat=True)
        mock.get(f"{BASE}/readyz", body="\n", repeat=True)
        yield mock


def count(mock: aioresponses, method: str, path: str) -> int:
    return len(mock.requests.get((method, URL(f"{BASE}{path}")), []))


class Clients:
    """Runs the same call through the async client and the sync client."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def call(self, name: str, *path: str, retry: Any = FAST, **kwargs: Any) -> Any:
        if self.kind == "async":
            async with AsyncHTTPClient(BASE, retry=retry) as client:
                target: Any = client
                for part in (name, *path):
                    target = getattr(target, part)
                return await target(**kwargs)

        def run() -> Any:
            with SyncHTTPClient(BASE, retry=retry) as client:
                target: Any = client
                for part in (name, *path):
                    target = getattr(target, part)
                return target(**kwargs)

        return await asyncio.to_thread(run)


@pytest.fixture(params=["async", "sync"])
def clients(request: pytest.FixtureRequest) -> Clients:
    return Clients(str(request.param))


async def test_503_with_retry_after_then_success(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(
        f"{BASE}/echo", status=503, payload={"error": "busy"}, headers={"Retry-After": "0.2"}
    )
    mocked.post(f"{BASE}/echo", payload={"ok": 1})
    started = time.monotonic()
    assert await clients.call("echo", data={"a": 1}) == {"ok": 1}
    assert time.monotonic() - started >= 0.19
    assert count(mocked, "POST", "/echo") == 2


async def test_429_with_http_date_retry_after(mocked: aioresponses, clients: Clients) -> None:
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    mocked.post(
        f"{BASE}/echo", status=429, payload={"error": "slow down"}, headers={"Retry-After": when}
    )
    mocked.post(f"{BASE}/echo", payload={"ok": 2})
    assert await clients.call("echo", data={}) == {"ok": 2}
    assert count(mocked, "POST", "/echo") == 2


async def test_retry_after_above_the_cap_is_raised_at_once(
    mocked: aioresponses, clients: Clients
) -> None:
    mocked.post(
        f"{BASE}/echo",
        status=503,
        payload={"error": "come back tomorrow"},
        headers={"Retry-After": "86400"},
    )
    with pytest.raises(exc.ServiceUnavailable) as info:
        await clients.call("echo", data={})
    assert info.value.retry_after == 86400
    assert info.value.attempts == 1
    assert count(mocked, "POST", "/echo") == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (502, exc.BadGateway),
        (503, exc.ServiceUnavailable),
        (504, exc.GatewayTimeout),
        (429, exc.TooManyRequests),
    ],
)
async def test_retryable_statuses_give_up_after_max_attempts(
    mocked: aioresponses, clients: Clients, status: int, cls: type[exc.BentoMLException]
) -> None:
    mocked.post(f"{BASE}/echo", status=status, payload={"error": "nope"}, repeat=True)
    with pytest.raises(cls) as info:
        await clients.call("echo", data={})
    assert info.value.attempts == 3
    assert info.value.message == "nope"
    assert count(mocked, "POST", "/echo") == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, exc.InternalServerError),
        (400, exc.InvalidArgument),
        (404, exc.NotFound),
        (401, exc.Unauthorized),
        (422, exc.UnprocessableEntity),
    ],
)
async def test_other_statuses_are_not_retried(
    mocked: aioresponses, clients: Clients, status: int, cls: type[exc.BentoMLException]
) -> None:
    mocked.post(f"{BASE}/echo", status=status, payload={"error": "no"}, repeat=True)
    with pytest.raises(cls):
        await clients.call("echo", data={})
    assert count(mocked, "POST", "/echo") == 1


async def test_connection_refused_is_retried_then_typed(
    mocked: aioresponses, clients: Clients
) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("bento.mock", 3000, False, True, None, None, None),
        ConnectionRefusedError(111, "Connection refused"),
    )
    mocked.post(f"{BASE}/echo", exception=refused, repeat=True)
    with pytest.raises(exc.ConnectError) as info:
        await clients.call("echo", data={})
    assert info.value.attempts == 3
    assert count(mocked, "POST", "/echo") == 3


async def test_disconnect_before_response_is_retried(
    mocked: aioresponses, clients: Clients
) -> None:
    mocked.post(f"{BASE}/echo", exception=aiohttp.ServerDisconnectedError())
    mocked.post(f"{BASE}/echo", payload={"ok": 3})
    assert await clients.call("echo", data={}) == {"ok": 3}
    assert count(mocked, "POST", "/echo") == 2


async def test_read_timeout_is_not_retried(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/echo", exception=aiohttp.SocketTimeoutError("read"), repeat=True)
    with pytest.raises(exc.ReadTimeout) as info:
        await clients.call("echo", data={})
    assert isinstance(info.value, TimeoutError)
    assert count(mocked, "POST", "/echo") == 1


async def test_retry_none_disables_retries(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/echo", status=503, payload={"error": "busy"}, repeat=True)
    with pytest.raises(exc.ServiceUnavailable) as info:
        await clients.call("echo", retry=None, data={})
    assert info.value.attempts == 1
    assert count(mocked, "POST", "/echo") == 1


async def test_submit_not_resent_after_a_disconnect(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/job/submit", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(exc.ConnectionLost):
        await clients.call("job", "submit", x=1)
    assert count(mocked, "POST", "/job/submit") == 1


async def test_submit_resent_when_refusal_is_proven(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/job/submit", status=503, payload={"error": "busy"})
    mocked.post(f"{BASE}/job/submit", payload={"task_id": "a" * 32, "status": "in_progress"})
    task = await clients.call("job", "submit", x=1)
    assert task.id == "a" * 32
    assert count(mocked, "POST", "/job/submit") == 2


@pytest.mark.parametrize(
    "answer",
    [{"id": "x"}, {"task_id": 7}, {"task_id": ""}, ["a" * 32], "a" * 32],
)
async def test_malformed_task_answers_are_decode_errors(
    mocked: aioresponses, clients: Clients, answer: Any
) -> None:
    mocked.post(f"{BASE}/job/submit", payload=answer)
    with pytest.raises(exc.ResponseDecodeError, match="task") as info:
        await clients.call("job", "submit", x=1)
    assert info.value.body is not None or answer == {"task_id": ""}
    assert count(mocked, "POST", "/job/submit") == 1


async def test_submit_not_resent_after_502(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/job/submit", status=502, body="bad gateway", repeat=True)
    with pytest.raises(exc.BadGateway):
        await clients.call("job", "submit", x=1)
    assert count(mocked, "POST", "/job/submit") == 1


async def test_garbage_json_is_a_decode_error(mocked: aioresponses, clients: Clients) -> None:
    mocked.post(f"{BASE}/echo", body="{definitely not json", content_type="application/json")
    with pytest.raises(exc.ResponseDecodeError) as info:
        await clients.call("echo", data={})
    assert info.value.body == "{definitely not json"
    assert count(mocked, "POST", "/echo") == 1


async def test_an_undecodable_success_answer_is_named_by_its_ids(
    mocked: aioresponses, clients: Clients
) -> None:
    # A 2xx answer that cannot be decoded is still the server's answer: its ids find it in
    # the server's log, as an error status's do.
    ids = {"X-BentoML-Request-ID": "5f1d2c3b4a596877", "X-BentoML-Trace-ID": "ab" * 16}
    mocked.post(f"{BASE}/echo", body="{not json", content_type="application/json", headers=ids)
    with pytest.raises(exc.ResponseDecodeError) as info:
        await clients.call("echo", data={})
    error = info.value
    assert (error.request_id, error.trace_id) == ("5f1d2c3b4a596877", "ab" * 16)
    assert str(error).endswith(f"(request_id=5f1d2c3b4a596877, trace_id={'ab' * 16})")
    assert error.body == "{not json"


async def test_html_error_page(mocked: aioresponses, clients: Clients) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
    mocked.post(f"{BASE}/echo", status=502, body=page, content_type="text/html", repeat=True)
    with pytest.raises(exc.BadGateway) as info:
        await clients.call("echo", data={})
    assert info.value.message == "502 Bad Gateway"
    assert info.value.body == page
    assert count(mocked, "POST", "/echo") == 3


async def test_large_body_is_decoded(mocked: aioresponses, clients: Clients) -> None:
    big = {"values": list(range(5_000))}  # aioresponses feeds the body at once: keep it small
    mocked.post(f"{BASE}/echo", payload=big)
    assert await clients.call("echo", data={}) == big


async def test_request_body_is_resent_whole(mocked: aioresponses, clients: Clients) -> None:
    bodies: list[Any] = []

    def record(url: URL, **kwargs: Any) -> CallbackResult:
        bodies.append(kwargs.get("data"))
        if len(bodies) == 1:
            return CallbackResult(
                status=503, payload={"error": "busy"}, headers={"Retry-After": "0"}
            )
        return CallbackResult(payload={"ok": True})

    mocked.post(f"{BASE}/echo", callback=record, repeat=True)
    assert await clients.call("echo", data={"k": "v" * 100}) == {"ok": True}
    assert len(bodies) == 2
    assert bodies[0] == bodies[1] == b'{"data":{"k":"' + b"v" * 100 + b'"}}'


async def test_schema_errors_are_typed(clients: Clients) -> None:
    with aioresponses() as mock:
        mock.get(f"{BASE}/readyz", body="\n", repeat=True)
        mock.get(
            f"{BASE}/schema.json", status=403, payload={"error": "Authorization error"}, repeat=True
        )
        with pytest.raises(exc.Forbidden) as info:
            await clients.call("echo", data={})
    assert info.value.message.startswith("Failed to fetch schema from http://bento.mock:3000")
