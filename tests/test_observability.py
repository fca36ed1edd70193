"""Observability against the real example service, through both clients: the server's request
ids on errors, per-call headers, trace context propagation and aiohttp tracing."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import subprocess
import sys
import threading
from typing import Any

import aiohttp
import pytest
from _clients import SyncAsAsync, close_client, open_client

import asyncbento
from asyncbento import AsyncHTTPClient, BentoMLException, RetryPolicy, SyncHTTPClient
from asyncbento.exceptions import InternalServerError, InvalidArgument
from asyncbento.testing import BentoServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=False)


async def _server_log_line(server: BentoServer, text: str) -> str:
    """The server's log line that mentions ``text`` (its log is written as it goes)."""
    for _ in range(50):
        for line in server.log_tail(2000).splitlines():
            if text in line:
                return line
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} not in the server log")


# ----------------------------------------------------------------------------- request ids


async def test_a_server_error_names_the_request_in_the_server_log(
    client: Any, example_server: BentoServer
) -> None:
    with pytest.raises(InternalServerError) as caught:
        await client.fail(code=500)
    error = caught.value
    assert error.message == "An unexpected error has occurred, please check the server log."
    assert re.fullmatch(r"[0-9a-f]{16}", error.request_id or "")
    assert re.fullmatch(r"[0-9a-f]{32}", error.trace_id or "")
    assert str(error) == (
        f"{error.message} (request_id={error.request_id}, trace_id={error.trace_id})"
    )
    logged = await _server_log_line(example_server, f"span={error.request_id}")
    assert "Exception on /fail" in logged or "path=/fail" in logged
    assert f"trace={error.trace_id}" in logged


async def test_every_error_answer_carries_its_own_ids(client: Any) -> None:
    with pytest.raises(InvalidArgument) as first:
        await client.checked_sqrt(x=-1)
    with pytest.raises(InvalidArgument) as second:
        await client.checked_sqrt(x=-1)
    assert first.value.request_id and second.value.request_id
    assert first.value.request_id != second.value.request_id
    assert first.value.request_id in str(first.value)


async def test_a_retried_error_carries_the_last_answers_id(
    client_kind: str, example_url: str
) -> None:
    opened = await open_client(client_kind, example_url, retry=FAST_RETRY)
    try:
        with pytest.raises(BentoMLException) as caught:
            await opened.fail(code=503)
    finally:
        await close_client(opened)
    assert caught.value.attempts == 3
    assert re.fullmatch(r"[0-9a-f]{16}", caught.value.request_id or "")


def test_errors_without_an_answer_have_no_ids() -> None:
    error = BentoMLException("no answer")
    assert (error.request_id, error.trace_id, str(error)) == (None, None, "no answer")


# ----------------------------------------------------------------------------- per-call headers


def _view(client: Any, **options: Any) -> Any:
    """``client.with_options(...)`` for either client kind, awaitable like the fixture's."""
    if isinstance(client, SyncAsAsync):
        return SyncAsAsync(client.sync.with_options(**options))
    return client.with_options(**options)


def _transport(client: Any) -> Any:
    return (client.sync._async if isinstance(client, SyncAsAsync) else client)._core.transport


async def test_per_call_headers_reach_the_service_and_stay_in_their_view(client: Any) -> None:
    tenant = _view(client, headers={"X-Tenant": "acme"})
    names = ["x-tenant", "x-user", "user-agent", "content-type"]
    seen = (await tenant.echo_headers(names=names))["headers"]
    assert seen == {
        "x-tenant": ["acme"],
        "x-user": [],
        "user-agent": [f"asyncbento/{asyncbento.__version__}"],  # the client's own stay
        "content-type": ["application/json"],  # the body's own wins
    }
    user = _view(tenant, headers={"X-User": "u1", "Content-Type": "text/plain"})
    seen = (await user.echo_headers(names=names))["headers"]
    assert (seen["x-tenant"], seen["x-user"], seen["content-type"]) == (
        ["acme"],
        ["u1"],
        ["application/json"],
    )
    other = _view(tenant, headers={"X-Tenant": "globex"})
    assert (await other.echo_headers(names=["x-tenant"]))["headers"] == {"x-tenant": ["globex"]}
    # The parent client never sends a view's headers, and every view shares its connections.
    assert (await client.echo_headers(names=["x-tenant"]))["headers"] == {"x-tenant": []}
    assert (await tenant.echo_headers(names=["x-user"]))["headers"] == {"x-user": []}
    assert _transport(tenant) is _transport(user) is _transport(other) is _transport(client)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-Ok": 1}, TypeError),
        (["X-Ok"], TypeError),
        ({"": "v"}, ValueError),
        ({"X Bad": "v"}, ValueError),
        ({"X-Bad:": "v"}, ValueError),
        ({"X-Bad": "v\r\nInjected: 1"}, ValueError),
    ],
)
def test_bad_headers_are_refused_before_anything_is_sent(
    headers: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncHTTPClient("http://127.0.0.1:9", headers=headers)
    with pytest.raises(error):
        AsyncHTTPClient("http://127.0.0.1:9").with_options(headers=headers)


def test_trace_configs_must_be_aiohttp_trace_configs() -> None:
    with pytest.raises(TypeError, match="aiohttp.TraceConfig"):
        AsyncHTTPClient("http://127.0.0.1:9", trace_configs=[object()])  # type: ignore[list-item]


# ----------------------------------------------------------------------------- trace context

_TRACE = ["traceparent", "tracestate", "baggage"]


def _traceparent(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_the_service_receives_the_callers_trace_context(client: Any) -> None:
    from opentelemetry import baggage, context
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("caller") as span:
        answer = await client.echo_headers(names=_TRACE)
    assert answer["headers"] == {
        "traceparent": [_traceparent(span)],
        "tracestate": [],
        "baggage": [],
    }
    # The server's own span continues the caller's trace.
    assert answer["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_as_current_span("with baggage") as inner:
            answer = await client.echo_headers(names=_TRACE)
    finally:
        context.detach(token)
    assert answer["headers"]["traceparent"] == [_traceparent(inner)]
    assert answer["headers"]["baggage"] == ["tenant=acme"]


async def test_nothing_is_sent_without_an_active_context(client: Any) -> None:
    import opentelemetry.context  # noqa: F401 - loaded, but no span is active

    answer = await client.echo_headers(names=_TRACE)
    assert answer["headers"] == {"traceparent": [], "tracestate": [], "baggage": []}


def test_a_sync_call_sends_the_calling_threads_span(example_url: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("tests")
    results: dict[str, Any] = {}
    with SyncHTTPClient(example_url) as client:

        def work(name: str) -> None:
            with tracer.start_as_current_span(name) as span:
                results[name] = (client.echo_headers(names=["traceparent"]), _traceparent(span))

        threads = [threading.Thread(target=work, args=(f"thread {i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        work("main")
        for thread in threads:
            thread.join()
    assert len(results) == 5
    for answer, sent in results.values():
        assert answer["headers"]["traceparent"] == [sent]


# ----------------------------------------------------------------------------- aiohttp tracing


async def test_trace_configs_see_every_request_and_connection_reuse(
    client_kind: str, example_url: str
) -> None:
    events: list[str] = []

    async def on_request_start(session: Any, context: Any, params: Any) -> None:
        events.append(f"start {params.method} {params.url.path}")

    async def on_connection_create_end(session: Any, context: Any, params: Any) -> None:
        events.append("new connection")

    async def on_connection_reuseconn(session: Any, context: Any, params: Any) -> None:
        events.append("reused connection")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_connection_create_end.append(on_connection_create_end)
    trace.on_connection_reuseconn.append(on_connection_reuseconn)
    opened = await open_client(
        client_kind, example_url, trace_configs=[trace], server_ready_timeout=0
    )
    try:
        assert await opened.add(a=1, b=2) == 3
        assert await opened.add(a=2, b=2) == 4
    finally:
        await close_client(opened)
    assert events == [
        "start GET /schema.json",
        "new connection",
        "start POST /v1/math/add",
        "reused connection",
        "start POST /v1/math/add",
        "reused connection",
    ]


def test_opentelemetry_is_not_imported_unless_the_application_uses_it(example_url: str) -> None:
    # A fresh interpreter: this test process has OpenTelemetry loaded (bentoml imports it).
    script = f"""
import asyncio, sys
import asyncbento
from asyncbento import exceptions

URL = {example_url!r}
assert not [m for m in sys.modules if m.startswith("opentelemetry")], "import asyncbento"

async def main():
    async with asyncbento.AsyncHTTPClient(URL) as client:
        assert await client.with_options(headers={{"X-Tenant": "a"}}).add(a=1) == 1
        assert "".join([x async for x in client.stream_async(n=2)]) == "tok0\\ntok1\\n"
        try:
            await client.fail(code=500)
        except exceptions.InternalServerError as error:
            assert error.request_id
        task = await client.slow_square.submit(x=3, delay=0)
        assert (await task.result(timeout=30)) == {{"x": 3, "square": 9}}

asyncio.run(main())
with asyncbento.SyncHTTPClient(URL) as client:
    assert client.add(a=2) == 2
    assert list(client.stream_sync(n=1)) == ["tok0\\n"]
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
print("loaded:", loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert (done.returncode, done.stdout.strip()) == (0, "loaded: []"), done.stderr


async def test_request_responses_name_themselves_and_views_send_their_headers(
    client: Any,
) -> None:
    view = _view(client, headers={"X-Tenant": "acme"})
    answer = await view.request("POST", "/echo_headers", json={"names": ["x-tenant"]})
    assert answer.json()["headers"] == {"x-tenant": ["acme"]}
    assert re.fullmatch(r"[0-9a-f]{16}", answer.request_id or "")
    assert answer.trace_id == answer.json()["trace_id"]  # the server's trace for this call
    failed = await client.request("POST", "/fail", json={"code": 500})
    assert failed.status_code == 500 and failed.request_id
    with pytest.raises(InternalServerError) as caught:
        failed.raise_for_status()
    assert (caught.value.request_id, caught.value.trace_id) == (failed.request_id, failed.trace_id)
    missing = await client.request("GET", "/no/such/route")
    assert missing.status_code == 404
    assert missing.request_id is None  # the server names API answers only


def test_opentelemetry_is_an_optional_dependency_only() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("opentelemetry")]
    extras = project["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["otel"]} == {
        "opentelemetry-api",
        "opentelemetry-instrumentation",
    }
    entry = project["entry-points"]["opentelemetry_instrumentor"]["asyncbento"]
    assert entry == "asyncbento.integrations.opentelemetry:AsyncBentoInstrumentor"
