"""Opt-in OpenTelemetry spans (asyncbento.integrations.opentelemetry) against the real example
service, through both clients: one span per call with the HTTP client attributes, retries
counted, streams ended when they end or are left, and nesting with aiohttp's instrumentation."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _clients import close_client, open_client
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncbento import AsyncHTTPClient, RetryPolicy
from asyncbento.exceptions import ConnectError, ServiceUnavailable
from asyncbento.integrations.opentelemetry import AsyncBentoInstrumentor

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=False)


class Spans:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name == name]


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorded = Spans()
    AsyncBentoInstrumentor().instrument(tracer_provider=recorded.provider)
    try:
        yield recorded
    finally:
        AsyncBentoInstrumentor().uninstrument()


def _check_add_span(spans: Spans, caller: Any, example_url: str) -> None:
    """The one span of a successful ``add`` call, a child of ``caller``."""
    host, port = example_url.removeprefix("http://").split(":")
    [add] = spans.named("POST /v1/math/add")
    assert add.kind is trace.SpanKind.CLIENT
    assert dict(add.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": host,
        "server.port": int(port),
        "url.full": f"{example_url}/v1/math/add",
        "url.template": "/v1/math/add",
        "http.response.status_code": 200,
        "asyncbento.endpoint": "add",
    }
    assert add.status.status_code is trace.StatusCode.UNSET
    assert add.parent is not None and add.parent.span_id == caller.get_span_context().span_id


def _hex_span(span: Any) -> str:
    return f"{span.context.span_id:016x}"


async def test_one_span_per_call_with_the_http_client_attributes(
    spans: Spans, client: Any, example_url: str
) -> None:
    spans.exporter.clear()  # the client's set-up (its schema fetch) had its own span
    with spans.tracer.start_as_current_span("caller") as caller:
        assert await client.add(a=1, b=2) == 3
        answer = await client.echo_headers(names=["traceparent"])
    _check_add_span(spans, caller, example_url)
    [echo] = spans.named("POST /echo_headers")
    # The span is the one the service hears about, and the service's trace is the caller's.
    [sent] = answer["headers"]["traceparent"]
    assert sent.split("-")[2] == _hex_span(echo)
    assert answer["trace_id"] == f"{caller.get_span_context().trace_id:032x}"
    assert sorted(s.name for s in spans.exporter.get_finished_spans()) == [
        "POST /echo_headers",
        "POST /v1/math/add",
        "caller",
    ]


async def test_retries_are_counted_on_the_one_span(
    spans: Spans, client_kind: str, example_url: str
) -> None:
    opened = await open_client(client_kind, example_url, retry=FAST_RETRY)
    try:
        spans.exporter.clear()
        with pytest.raises(ServiceUnavailable):
            await opened.fail(code=503)
        task = await opened.slow_square.submit(x=4, delay=0)
        assert await task.result(timeout=30) == {"x": 4, "square": 16}
    finally:
        await close_client(opened)
    [failed] = spans.named("POST /fail")
    attributes = dict(failed.attributes or {})
    assert attributes["http.request.resend_count"] == 2
    assert attributes["http.response.status_code"] == 503
    assert attributes["error.type"] == "503"
    assert failed.status.status_code is trace.StatusCode.ERROR
    [submit] = spans.named("POST /slow_square/submit")
    assert dict(submit.attributes or {})["asyncbento.endpoint"] == "slow_square"
    [get] = spans.named("GET /slow_square/get")
    assert dict(get.attributes or {})["url.full"].endswith(f"/slow_square/get?task_id={task.id}")


async def test_a_failure_without_an_answer_names_its_type() -> None:
    recorded = Spans()
    AsyncBentoInstrumentor().instrument(tracer_provider=recorded.provider)
    try:
        with pytest.raises(ConnectError):
            async with AsyncHTTPClient(
                "http://127.0.0.1:9", server_ready_timeout=0, retry=FAST_RETRY
            ):
                pass
    finally:
        AsyncBentoInstrumentor().uninstrument()
    [span] = recorded.named("GET /schema.json")
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "asyncbento.exceptions.ConnectError"
    assert attributes["http.request.resend_count"] == 2
    assert "http.response.status_code" not in attributes
    assert "asyncbento.endpoint" not in attributes  # no endpoints before the schema
    assert span.status.status_code is trace.StatusCode.ERROR


async def test_a_stream_span_ends_with_the_stream_or_when_it_is_left(
    spans: Spans, client: Any
) -> None:
    spans.exporter.clear()
    items = [item async for item in client.stream_async(n=3)]
    assert "".join(items) == "tok0\ntok1\ntok2\n"
    assert len(spans.named("POST /stream_async")) == 1
    stream = client.stream_async(n=5, delay=0.2).__aiter__()
    assert await stream.__anext__() == "tok0\n"
    assert len(spans.named("POST /stream_async")) == 1  # still running
    await stream.aclose()  # left early
    for _ in range(50):
        if len(spans.named("POST /stream_async")) == 2:
            break
        await asyncio.sleep(0.02)
    left = spans.named("POST /stream_async")[1]
    assert dict(left.attributes or {})["http.response.status_code"] == 200


async def test_spans_nest_with_opentelemetrys_aiohttp_instrumentation(
    spans: Spans, client_kind: str, example_url: str
) -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        opened = await open_client(client_kind, example_url, server_ready_timeout=0)
        try:
            spans.exporter.clear()
            with spans.tracer.start_as_current_span("caller") as caller:
                answer = await opened.echo_headers(names=["traceparent"])
        finally:
            await close_client(opened)
    finally:
        AioHttpClientInstrumentor().uninstrument()
    ours = spans.named("POST /echo_headers")
    theirs = [s for s in spans.exporter.get_finished_spans() if s.name == "POST"]
    assert len(ours) == 1 and len(theirs) == 1
    assert ours[0].parent is not None
    assert ours[0].parent.span_id == caller.get_span_context().span_id
    assert theirs[0].parent is not None and theirs[0].parent.span_id == ours[0].context.span_id
    # One traceparent reaches the service: the innermost span's.
    assert [value.split("-")[2] for value in answer["headers"]["traceparent"]] == [
        _hex_span(theirs[0])
    ]


def test_uninstrument_turns_spans_off(example_url: str) -> None:
    recorded = Spans()
    instrumentor = AsyncBentoInstrumentor()
    assert AsyncBentoInstrumentor() is instrumentor  # one per process, as in OpenTelemetry
    instrumentor.instrument(tracer_provider=recorded.provider)
    instrumentor.uninstrument()
    from asyncbento import SyncHTTPClient

    with SyncHTTPClient(example_url) as client:
        assert client.add(a=1) == 1
    assert recorded.exporter.get_finished_spans() == ()


async def test_suppressed_instrumentation_makes_no_span(spans: Spans, client: Any) -> None:
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation

    spans.exporter.clear()
    with suppress_http_instrumentation():
        assert await client.add(a=2) == 2
    assert spans.exporter.get_finished_spans() == ()
    assert context.get_current() == {}  # nothing left attached
    assert await client.add(a=3) == 3
    assert len(spans.named("POST /v1/math/add")) == 1


async def test_a_dropped_async_stream_ends_its_span(spans: Spans, example_url: str) -> None:
    async with AsyncHTTPClient(example_url) as client:
        spans.exporter.clear()
        stream = client.stream_async(n=5, delay=0.2)
        assert await stream.__anext__() == "tok0\n"
        del stream
        gc.collect()  # the loop's async-generator finaliser closes it
        for _ in range(100):
            if spans.named("POST /stream_async"):
                break
            await asyncio.sleep(0.02)
        assert len(spans.named("POST /stream_async")) == 1


def test_a_dropped_sync_stream_ends_its_span(spans: Spans, example_url: str) -> None:
    from asyncbento import SyncHTTPClient

    with SyncHTTPClient(example_url) as client:
        spans.exporter.clear()
        stream = client.stream_async(n=5, delay=0.2)
        assert next(stream) == "tok0\n"
        del stream
        gc.collect()
        for _ in range(100):
            if spans.named("POST /stream_async"):
                break
            time.sleep(0.02)
        assert len(spans.named("POST /stream_async")) == 1


async def test_a_request_has_its_own_span(spans: Spans, client: Any, example_url: str) -> None:
    spans.exporter.clear()
    with spans.tracer.start_as_current_span("caller") as caller:
        added = await client.request("POST", "/v1/math/add", json={"a": 1, "b": 2})
        missing = await client.request("GET", "/no/such/route")
    assert (added.status_code, added.json()) == (200, 3)
    assert missing.status_code == 404
    _check_add_span(spans, caller, example_url)
    # An error status is returned, not raised, and still marks the span.
    [lost] = spans.named("GET /no/such/route")
    attributes = dict(lost.attributes or {})
    assert attributes["http.response.status_code"] == 404
    assert attributes["error.type"] == "404"
    assert "asyncbento.endpoint" not in attributes
    assert lost.status.status_code is trace.StatusCode.ERROR
    assert sorted(s.name for s in spans.exporter.get_finished_spans()) == [
        "GET /no/such/route",
        "POST /v1/math/add",
        "caller",
    ]
