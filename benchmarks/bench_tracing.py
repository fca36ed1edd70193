"""What observability costs per call: trace context propagation and opt-in spans.

    python benchmarks/bench_tracing.py [--calls 2000] [--rounds 9]

Against the stand-in server (CPU 0), this process (CPU 1) makes ``--calls`` sequential calls
with one ``AsyncHTTPClient`` in each of four modes, in rotating order, ``--rounds`` times:

- ``plain``: OpenTelemetry not in use (``opentelemetry.context`` is hidden from
  ``sys.modules`` for the round, which is what asyncbento looks at), so no propagation code runs;
- ``loaded``: OpenTelemetry imported, no span active: each request looks the context up and
  sends nothing;
- ``span``: a span is active around the calls: each request gets its ``traceparent``;
- ``spans on``: ``AsyncBentoInstrumentor`` enabled (an SDK ``TracerProvider`` without
  exporter), a span active: one span per call, plus propagation.

Reported: the median CPU time per call of each mode and the median of the paired per-round
differences with ``plain``. The propagation hook alone (``otel_in_use()`` +
``with_trace_context()``, with and without a span) and the span alone (no request) are also
timed in tight loops, where the few µs they cost are not lost in the noise of a real call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the stand-in and this checkout

MODES = ("plain", "loaded", "span", "spans on")


@contextmanager
def otel_hidden() -> Iterator[None]:
    """For the ``plain`` rounds: asyncbento sees an application that never imported OTel."""
    module = sys.modules.pop("opentelemetry.context")
    try:
        yield
    finally:
        sys.modules["opentelemetry.context"] = module


def hook_cost(n: int = 100_000, *, span: bool = False) -> float:
    """µs per request of the propagation hook, OpenTelemetry loaded (with a span active when
    ``span``: the hook then writes a ``traceparent``)."""
    from opentelemetry.sdk.trace import TracerProvider

    from asyncbento._tracing import otel_in_use, with_trace_context

    headers = {"Content-Type": "application/json"}
    tracer = TracerProvider().get_tracer("bench")
    with tracer.start_as_current_span("caller") if span else nullcontext():
        started = time.perf_counter()
        for _ in range(n):
            if otel_in_use():
                with_trace_context(headers)
        return (time.perf_counter() - started) / n * 1e6


def span_cost(n: int = 20_000) -> float:
    """µs per call of the span alone: started, its attributes set, made current around the
    attempts, and ended (an SDK provider without exporter; no request is sent)."""
    from opentelemetry.sdk.trace import TracerProvider
    from yarl import URL

    from asyncbento._config import Limits
    from asyncbento._transport import Transport
    from asyncbento.integrations.opentelemetry import _SpanPerCall

    class Answer:
        status = 200

    class Core:
        transport = Transport("http://127.0.0.1:3000", headers={}, limits=Limits())
        endpoints: dict[str, Any] = {}

    async def attempt() -> Any:
        return Answer()

    async def retry(operation: Any) -> Any:
        return await operation()

    async def calls() -> float:
        core, url = Core(), URL("http://127.0.0.1:3000/small")
        tracer = _SpanPerCall(TracerProvider().get_tracer("bench")).open
        finishers = core.transport._finishers
        started = time.perf_counter()
        for _ in range(n):
            answer = await tracer(core, "POST", url, None, attempt, retry)
            finishers.pop(answer)(answer)
        return (time.perf_counter() - started) / n * 1e6

    return asyncio.run(calls())


async def measure(url: str, calls: int, rounds: int) -> dict[str, list[float]]:
    from opentelemetry.sdk.trace import TracerProvider
    from run_all import cpu_seconds

    from asyncbento import AsyncHTTPClient
    from asyncbento.integrations.opentelemetry import AsyncBentoInstrumentor

    provider = TracerProvider()
    tracer = provider.get_tracer("bench")
    instrumentor = AsyncBentoInstrumentor()
    costs: dict[str, list[float]] = {mode: [] for mode in MODES}
    async with AsyncHTTPClient(url, retry=None) as client:

        async def run(mode: str) -> float:
            started = cpu_seconds()
            for _ in range(calls):
                await client.small(text="x")
            return (cpu_seconds() - started) / calls * 1e6

        for _ in range(300):  # warm up every path once
            await client.small(text="x")
        for index in range(rounds):
            order = MODES[index % len(MODES) :] + MODES[: index % len(MODES)]
            for mode in order:
                if mode == "plain":
                    with otel_hidden():
                        costs[mode].append(await run(mode))
                elif mode == "loaded":
                    costs[mode].append(await run(mode))
                else:
                    if mode == "spans on":
                        instrumentor.instrument(tracer_provider=provider)
                    try:
                        with tracer.start_as_current_span("caller"):
                            costs[mode].append(await run(mode))
                    finally:
                        if mode == "spans on":
                            instrumentor.uninstrument()
    return costs


def report(costs: dict[str, list[float]], rounds: int) -> None:
    plain = costs["plain"]
    median: Callable[[list[float]], float] = statistics.median
    for mode in MODES:
        extra = [value - base for value, base in zip(costs[mode], plain, strict=True)]
        line = f"{mode:>9}: {median(costs[mode]):6.1f} µs CPU per call"
        if mode != "plain":
            line += f"  ({median(extra):+.1f} µs vs plain, median of {rounds} paired rounds)"
        print(line)
    print("alone, without the network (tight loops, wall time):")
    print(f"  propagation hook, OpenTelemetry loaded, no span: {hook_cost():.2f} µs per request")
    print(f"  propagation hook, a span active (traceparent):   {hook_cost(span=True):.2f} µs")
    print(f"  one span per call (start, attributes, end):      {span_cost():.2f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    import opentelemetry.context  # noqa: F401 - the application "uses OpenTelemetry"
    from run_all import standin

    with standin(pin_self=True) as url:
        time.sleep(0.5)
        costs: Any = asyncio.run(measure(url, args.calls, args.rounds))
    report(costs, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
