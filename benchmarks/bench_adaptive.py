"""Adaptive batches against a capped service: the engine's defaults vs the best fixed window.

    python benchmarks/bench_adaptive.py [--seconds 5] [--capacities 4 32 256]

For each capacity K, a capped stand-in (``capped_standin.py``: 429 beyond K calls in flight,
a fixed latency per call, pinned to CPU 0) gets the same inputs through ``client.map``
(pinned to CPU 1):

- a sweep of fixed windows (``adaptive=False``, the client's default retry policy), K/2 to 4K;
- the adaptive engine with its defaults, at ``concurrency=64`` (the default) and at a ceiling
  of 1024 (the connection pool raised to match).

Reports successful calls per second, inputs lost (failed) and calls the service refused, and
the adaptive throughput as a share of the best fixed window. The number of inputs is chosen so
that the ideal run (inputs x latency / K) takes ``--seconds``.

    python benchmarks/bench_adaptive.py --bentoml 400

runs the batch guide's table instead (and ``--uncapped N`` compares the adaptive window with a
fixed one against the fast uncapped stand-in, runs alternated): the real
``examples/capped_service.py`` under ``bentoml serve`` (4 at once, 50 ms a call), fixed and
adaptive windows at concurrency 8, 64 and 256.

    python benchmarks/bench_adaptive.py --bentoml-tasks 200

does the same for ``map_tasks`` of its task endpoint (a running task holds one of the 4 request
slots until it ends): fixed windows of 1 to 4 tasks and the adaptive engine, with the requests
the service refused (submissions, status polls and gets alike).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

LATENCY = {4: 0.02, 32: 0.05, 256: 0.2}  # per call: K / latency stays within the server's CPU


@contextlib.contextmanager
def capped_standin(capacity: int, latency: float) -> Iterator[str]:
    from run_all import TWO_CPUS, free_port

    port = free_port()
    command = [sys.executable, os.path.join(HERE, "capped_standin.py"), str(port)]
    command += [str(capacity), str(latency)] + (["0"] if TWO_CPUS else [])
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/readyz", timeout=1).close()
                break
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def refused_so_far(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_stats", timeout=5) as answer:
        return int(json.load(answer)["refused"])


async def one_run(
    url: str, count: int, concurrency: int, adaptive: bool, *, stats: bool = True
) -> dict[str, Any]:
    from asyncbento import AsyncHTTPClient, Limits

    limits = Limits(max_connections=max(100, concurrency))
    refused_before = refused_so_far(url) if stats else 0
    async with AsyncHTTPClient(url, limits=limits) as client:
        started = time.perf_counter()
        results = await client.map(
            "echo",
            ({"x": i} for i in range(count)),
            concurrency=concurrency,
            adaptive=adaptive,
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
    ok = sum(1 for i, r in enumerate(results) if r == i)
    return {
        "ok_per_second": ok / elapsed,
        "lost": count - ok,
        "refused": refused_so_far(url) - refused_before if stats else None,
        "seconds": elapsed,
    }


def sweep(capacity: int, seconds: float) -> list[tuple[str, dict[str, Any]]]:
    latency = LATENCY.get(capacity, 0.05)
    count = int(seconds * capacity / latency)
    rows = []
    with capped_standin(capacity, latency) as url:
        windows = sorted({max(1, capacity // 2), capacity, 2 * capacity, 4 * capacity})
        for window in windows:
            rows.append((f"fixed {window}", asyncio.run(one_run(url, count, window, False))))
        for ceiling in (64, 1024):
            rows.append(
                (f"adaptive, ceiling {ceiling}", asyncio.run(one_run(url, count, ceiling, True)))
            )
    return rows


def real_bentoml(count: int) -> int:
    """The guide's table: ``examples/capped_service.py`` (a real ``bentoml serve``, 4 at once,
    50 ms a call), ``count`` inputs at concurrency 8, 64 and 256, fixed and adaptive, and a fixed
    window of exactly 4 (the best a client can do, knowing the cap)."""
    from asyncbento.testing import BentoServer

    ideal = 4 / 0.05
    print(f"BentoML capped_service: max_concurrency=4, 50 ms, {count} inputs, ideal {ideal:.0f}/s")
    print("| concurrency | window | succeeded | failed | ok/s | of ideal |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    examples = os.path.join(ROOT, "examples")
    with BentoServer("capped_service:CappedService", working_dir=examples) as server:
        for concurrency in (4, 8, 64, 256):
            for adaptive in (False, True) if concurrency > 4 else (False,):
                r = asyncio.run(one_run(server.url, count, concurrency, adaptive, stats=False))
                print(
                    f"| {concurrency} | {'adaptive' if adaptive else 'fixed'} | "
                    f"{count - r['lost']} | {r['lost']} | {r['ok_per_second']:.0f} | "
                    f"{r['ok_per_second'] / ideal:.0%} |",
                    flush=True,
                )
    return 0


async def one_task_run(url: str, count: int, concurrency: int, adaptive: bool) -> dict[str, Any]:
    """``map_tasks`` of ``echo_task``: seconds, inputs lost, and requests answered 429 by route."""
    import aiohttp

    from asyncbento import AsyncHTTPClient

    refused: dict[str, int] = {}

    async def count_refusal(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
        if params.response.status == 429:
            operation = params.url.path.rsplit("/", 1)[-1]
            refused[operation] = refused.get(operation, 0) + 1

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(count_refusal)
    async with AsyncHTTPClient(url, trace_configs=[trace]) as client:
        started = time.perf_counter()
        results = await client.map_tasks(
            "echo_task",
            [{"x": i} for i in range(count)],
            concurrency=concurrency,
            adaptive=adaptive,
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
    ok = sum(1 for i, r in enumerate(results) if r == i)
    return {"seconds": elapsed, "lost": count - ok, "refused": refused}


def real_bentoml_tasks(count: int) -> int:
    """``map_tasks`` against ``examples/capped_service.py``: fixed windows 1-4 and adaptive."""
    from asyncbento.testing import BentoServer

    ideal = count * 0.05 / 4
    print(f"BentoML capped_service: max_concurrency=4, 50 ms tasks, {count} inputs")
    print("| concurrency | window | succeeded | failed | seconds | x ideal | refused (429) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    examples = os.path.join(ROOT, "examples")
    with BentoServer("capped_service:CappedService", working_dir=examples) as server:
        for concurrency, adaptive in [(1, False), (2, False), (3, False), (4, False)] + [
            (64, True),
            (256, True),
        ]:
            r = asyncio.run(one_task_run(server.url, count, concurrency, adaptive))
            refused = ", ".join(f"{op} {n}" for op, n in sorted(r["refused"].items())) or "none"
            print(
                f"| {concurrency} | {'adaptive' if adaptive else 'fixed'} | "
                f"{count - r['lost']} | {r['lost']} | {r['seconds']:.2f} | "
                f"{r['seconds'] / ideal:.2f} | {refused} |",
                flush=True,
            )
    return 0


def uncapped(count: int, rounds: int) -> int:
    """Adaptive vs fixed window against the fast uncapped stand-in, runs alternated (so that a
    busy machine slows both alike); reports the median ratio of their throughputs."""
    from bench_map import asyncbento_map, asyncbento_map_fixed
    from run_all import standin

    ratios, cpu_ratios = [], []
    with standin(pin_self=True) as url:
        asyncio.run(asyncbento_map(url, 2000, 64))  # warm up both sides
        for _ in range(rounds):
            rates, cpu = [], []
            for case in (asyncbento_map, asyncbento_map_fixed):
                started, cpu_started = time.perf_counter(), time.process_time()
                assert asyncio.run(case(url, count, 64)) == count
                rates.append(count / (time.perf_counter() - started))
                cpu.append((time.process_time() - cpu_started) / count * 1e6)
            ratios.append(rates[0] / rates[1])
            cpu_ratios.append(cpu[0] / cpu[1])
            print(
                f"  adaptive {rates[0]:8.0f}/s {cpu[0]:6.1f} us CPU/call   "
                f"fixed {rates[1]:8.0f}/s {cpu[1]:6.1f} us CPU/call",
                flush=True,
            )
    median, cpu_median = statistics.median(ratios), statistics.median(cpu_ratios)
    print(
        f"uncapped stand-in, concurrency 64, median of {rounds}: adaptive / fixed throughput "
        f"{median:.3f}, client CPU per call {cpu_median:.3f}"
    )
    return 0 if median >= 0.95 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--capacities", type=int, nargs="+", default=[4, 32, 256])
    parser.add_argument(
        "--bentoml", type=int, metavar="N", help="instead: N inputs against the real capped service"
    )
    parser.add_argument(
        "--bentoml-tasks", type=int, metavar="N", help="instead: map_tasks, the real service"
    )
    parser.add_argument(
        "--uncapped", type=int, metavar="N", help="instead: adaptive vs fixed, N inputs, uncapped"
    )
    args = parser.parse_args()
    if args.bentoml:
        return real_bentoml(args.bentoml)
    if args.bentoml_tasks:
        return real_bentoml_tasks(args.bentoml_tasks)
    if args.uncapped:
        return uncapped(args.uncapped, rounds=5)
    from run_all import TWO_CPUS

    if TWO_CPUS:
        os.sched_setaffinity(0, {1})
    failed = False
    for capacity in args.capacities:
        latency = LATENCY.get(capacity, 0.05)
        ideal = capacity / latency
        print(
            f"K={capacity}, latency {latency * 1000:.0f} ms, ideal {ideal:.0f} calls/s", flush=True
        )
        rows = sweep(capacity, args.seconds)
        best = max(
            r["ok_per_second"] for name, r in rows if name.startswith("fixed") and r["lost"] == 0
        )
        for name, r in rows:
            print(
                f"  {name:24} {r['ok_per_second']:8.1f} ok/s  {r['ok_per_second'] / ideal:6.1%} of ideal"
                f"  lost {r['lost']:5}  refused {r['refused']:6}",
                flush=True,
            )
        for name, r in rows:
            if name.startswith("adaptive") and (capacity <= 64 or "1024" in name):
                share = r["ok_per_second"] / best
                print(f"  {name}: {share:.1%} of the best lossless fixed window", flush=True)
                failed |= share < 0.9 or r["lost"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
