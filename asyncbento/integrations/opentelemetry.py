"""OpenTelemetry spans for asyncbento calls: ``pip install 'asyncbento[otel]'``.

Turn it on like any OpenTelemetry instrumentation, in code::

    from asyncbento.integrations.opentelemetry import AsyncBentoInstrumentor

    AsyncBentoInstrumentor().instrument()  # or .instrument(tracer_provider=provider)

or with zero-code instrumentation (``opentelemetry-instrument python app.py``), which finds it
through the ``opentelemetry_instrumentor`` entry point.

Each endpoint call (and each task operation and schema fetch) gets one ``CLIENT`` span that
covers all of its attempts, named ``{method} {path}`` (e.g. ``POST /summarize``), with
OpenTelemetry's HTTP client attributes: ``http.request.method``, ``server.address``,
``server.port``, ``url.full`` (never with credentials), ``url.template``,
``http.response.status_code``, ``http.request.resend_count`` (retries), ``error.type``; plus
``asyncbento.endpoint``, the endpoint's name. A stream's span ends when the stream ends or is
abandoned. The span is the current one while the request is sent, so the ``traceparent`` the
service receives is the span's, and the spans of OpenTelemetry's aiohttp-client
instrumentation, if it is on too, are its children (one ``traceparent``: theirs).

Trace context propagation does not need this module: it happens whenever the application
uses OpenTelemetry.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from opentelemetry import context, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from yarl import URL

from .._response import Response
from .._tracing import registry
from .._version import __version__
from ..exceptions import BentoMLException

if TYPE_CHECKING:
    from .._core import _Core
    from .._transport import Transport

A = TypeVar("A")

__all__ = ["AsyncBentoInstrumentor"]

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"


class AsyncBentoInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Makes one span per asyncbento call (OpenTelemetry's ``BaseInstrumentor``).

    ``instrument(tracer_provider=...)`` turns spans on for every client of the process,
    ``uninstrument()`` turns them off.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """Nothing beyond asyncbento itself, which this module is part of."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            "asyncbento",
            __version__,
            tracer_provider=kwargs.get("tracer_provider"),
            schema_url=_SCHEMA_URL,
        )
        registry.call_tracer = _SpanPerCall(tracer).open

    def _uninstrument(self, **kwargs: Any) -> None:
        registry.call_tracer = None


class _SpanPerCall:
    """Its ``open`` is the call tracer the client runs each call through (``_tracing``)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        # Per client, once its endpoints are known: endpoint names by URL path, and each
        # (method, URL)'s span attributes, made once (the SDK copies what it is given).
        self._names: weakref.WeakKeyDictionary[_Core, dict[str, str]]
        self._names = weakref.WeakKeyDictionary()
        self._made: weakref.WeakKeyDictionary[_Core, dict[tuple[str, URL], dict[str, Any]]]
        self._made = weakref.WeakKeyDictionary()

    async def open(
        self,
        core: _Core,
        method: str,
        url: URL,
        params: Mapping[str, str] | None,
        attempt: Callable[[], Awaitable[A]],
        retry: Callable[[Callable[[], Awaitable[A]]], Awaitable[A]],
    ) -> A:
        if not is_http_instrumentation_enabled():  # suppressed, as by other HTTP clients
            return await retry(attempt)
        span = self._tracer.start_span(
            f"{method} {url.path}",
            kind=trace.SpanKind.CLIENT,
            attributes=self._attributes(core, method, url, params),
        )
        attempts = 0

        async def counted() -> A:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                span.set_attribute("http.request.resend_count", attempts - 1)
            return await attempt()

        token = context.attach(trace.set_span_in_context(span))
        try:
            response = await retry(counted)
        except BaseException as exc:
            _failed(span, exc)
            span.end()
            raise
        finally:
            context.detach(token)
        if isinstance(response, aiohttp.ClientResponse):  # an endpoint call, maybe a stream
            span.set_attribute("http.response.status_code", response.status)
            core.transport.on_finish(response, lambda _: span.end())  # a stream: when it ends
        elif isinstance(response, Response):  # client.request(): read whole, any status
            _answered(span, response.status_code)
            span.end()
        return response

    def _attributes(
        self, core: _Core, method: str, url: URL, params: Mapping[str, str] | None
    ) -> dict[str, Any]:
        made = self._made.get(core)
        attributes = None if made is None else made.get((method, url))
        if attributes is None:
            attributes = self._describe(core, method, url)
            if core.endpoints is not None:  # before set-up the endpoint name is not known
                self._made.setdefault(core, {})[(method, url)] = attributes
        if params:  # a task operation's task_id: the full URL differs from call to call
            return {**attributes, "url.full": str(url.update_query(params))}
        return attributes

    def _describe(self, core: _Core, method: str, url: URL) -> dict[str, Any]:
        transport: Transport = core.transport
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": transport.socket_path or url.host or "",
            "url.full": str(url),
            "url.template": url.path,
        }
        if transport.socket_path is None and url.port is not None:
            attributes["server.port"] = url.port
        endpoint = self._endpoint_name(core, url.path)
        if endpoint is not None:
            attributes["asyncbento.endpoint"] = endpoint
        return attributes

    def _endpoint_name(self, core: _Core, path: str) -> str | None:
        names = self._names.get(core)
        if names is None:
            if core.endpoints is None:  # the schema fetch itself, before set-up
                return None
            names = {
                core.transport.url(endpoint.route).path: name
                for name, endpoint in core.endpoints.items()
            }
            self._names[core] = names
        # A task operation's path is its endpoint's route plus /submit, /status, ...
        return names.get(path) or names.get(path.rpartition("/")[0])


def _answered(span: trace.Span, status: int) -> None:
    """Mark a span with the status of the answer it returns (an error status is an error)."""
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(trace.Status(trace.StatusCode.ERROR))


def _failed(span: trace.Span, exc: BaseException) -> None:
    """Mark a call's span with the failure that ended it (a cancelled call is not one)."""
    if not isinstance(exc, Exception):
        return
    status = exc.status if isinstance(exc, BentoMLException) else None
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("error.type", str(status))
    else:
        span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
        span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
