"""Trace context propagation: the caller's OpenTelemetry context goes out with each request.

Nothing of OpenTelemetry is imported here. Only when the application has imported it
(``opentelemetry.context`` is in ``sys.modules``) does a request ask OpenTelemetry's globally
configured propagator (W3C ``traceparent``/``tracestate`` and baggage by default) to write the
current context into its headers; otherwise a request pays one dict lookup. The sync client's
calls run on its loop thread in a copy of the caller's context, so the caller's span is the
one sent.

Opt-in spans (``asyncbento.integrations.opentelemetry``) register a ``CallTracer`` here; the
client runs each call through it, for one span per call.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._retry import call_with_retry

if TYPE_CHECKING:
    from yarl import URL

    from ._config import RetryPolicy

_CONTEXT_MODULE = "opentelemetry.context"
_modules: dict[str, ModuleType] = {}


def _otel(name: str) -> ModuleType:
    module = _modules.get(name)
    if module is None:
        import importlib

        module = _modules[name] = importlib.import_module(name)
    return module


def otel_in_use() -> bool:
    """Whether the application has imported OpenTelemetry (asyncbento never does on its own)."""
    return _CONTEXT_MODULE in sys.modules


def with_trace_context(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """``headers`` plus the current OpenTelemetry context, as the global propagator writes it.

    Call only when :func:`otel_in_use`. An empty context (no span, no baggage) adds nothing.
    """
    context = _otel(_CONTEXT_MODULE).get_current()
    if not context:
        return headers
    carrier: dict[str, str] = dict(headers) if headers else {}
    _otel("opentelemetry.propagate").inject(carrier, context=context)
    return carrier


A = TypeVar("A")  # what a call's attempt gives: an aiohttp response, or a whole Response


class CallTracer(Protocol):
    """``await tracer(core, method, url, params, attempt, retry)`` returns
    ``await retry(attempt)`` (the call's attempts under its retry policy) run inside the call's
    span. An aiohttp response (an endpoint call) ends the span when the client's transport
    finishes it; an ``asyncbento.Response`` (``client.request()``, read whole) ends it at once.
    ``core`` is the client's shared state (a ``_core._Core``, typed loosely here: the
    transport below it imports this module)."""

    def __call__(
        self,
        core: Any,
        method: str,
        url: URL,
        params: Mapping[str, str] | None,
        attempt: Callable[[], Awaitable[A]],
        retry: Callable[[Callable[[], Awaitable[A]]], Awaitable[A]],
    ) -> Awaitable[A]: ...


def run_attempts(
    core: Any,
    method: str,
    url: URL,
    params: Mapping[str, str] | None,
    policy: RetryPolicy | None,
    resend_safe: bool,
    attempt: Callable[[], Awaitable[A]],
) -> Awaitable[A]:
    """``attempt`` under ``policy`` (a wait between attempts ends when the client closes),
    inside the call's span when spans are on: the one way every request is sent.

    A plain function that returns what to await: no coroutine of its own on the hot path.
    """
    pause = core.transport.pause
    tracer = registry.call_tracer
    if tracer is None:  # the hot path: no span, nothing built for one
        return call_with_retry(
            policy, attempt, resend_safe=resend_safe, target=(method, url), pause=pause
        )
    retry: Callable[[Callable[[], Awaitable[A]]], Awaitable[A]] = partial(
        call_with_retry, policy, resend_safe=resend_safe, target=(method, url), pause=pause
    )
    return tracer(core, method, url, params, attempt, retry)


class _Registry:
    """Where the OpenTelemetry integration puts its call tracer (``None``: spans are off)."""

    __slots__ = ("call_tracer",)

    def __init__(self) -> None:
        self.call_tracer: CallTracer | None = None


registry = _Registry()
