"""Paired A/B of the async hot path: two copies of the package and raw aiohttp, in one process.

    python benchmarks/hot_path_ab.py --candidate /tmp/scratch/asyncbento [--baseline DIR]
        [--concurrency 64] [--rounds 20] [--calls 2000] [--route small] [--sync]

CPU time per request on this (virtual) machine drifts by +-15 % from one process to the next, so
two separate runs cannot show a change of a few microseconds. Here a baseline copy of the package
(default: this checkout's), a candidate copy (each imported under its own module name) and a raw
aiohttp loop (the floor) run in alternating rounds on one event loop, against the stand-in server
on CPU 0; this process is on CPU 1. Reported: the median CPU µs per request of each, and the
median of the paired (round by round) differences. An A/A run (the same folder twice) reads
within +-1 µs. ``--sync``: sequential calls through each copy's ``SyncHTTPClient`` instead (each
copy has its own portal), without the raw loop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from run_all import cpu_seconds, drive_async  # noqa: E402 - the benchmarks folder, just added

ARGUMENTS: dict[str, dict[str, Any]] = {
    "small": {"text": "The quick brown fox jumps over the lazy dog."},
    "echo": {
        "data": {"items": [{"id": i, "label": f"label-{i}", "score": i / 3} for i in range(24)]}
    },
}


def import_copy(path: str, name: str) -> Any:
    """Import a copy of the package folder at ``path`` under the module name ``name``."""
    folder = tempfile.mkdtemp(prefix="asyncbento-ab-")
    shutil.copytree(path, os.path.join(folder, name))
    sys.path.insert(0, folder)
    return importlib.import_module(name)


async def drive(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> float:
    """CPU µs per call for ``calls`` calls made by ``concurrency`` workers."""
    started = cpu_seconds()
    await drive_async(call, calls, concurrency, None)
    return (cpu_seconds() - started) / calls * 1e6


async def compare(
    url: str, baseline: Any, candidate: Any, args: argparse.Namespace
) -> dict[str, list[float]]:
    import aiohttp
    import msgspec

    arguments = ARGUMENTS[args.route]
    limit = max(args.concurrency, 100)
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    headers = {"Content-Type": "application/json"}
    target = f"{url}/{args.route}"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))

    async def raw() -> Any:
        async with session.post(target, data=encoder.encode(arguments), headers=headers) as r:
            return decoder.decode(await r.read())

    base = baseline.AsyncHTTPClient(url, limits=baseline.Limits(max_connections=limit))
    other = candidate.AsyncHTTPClient(url, limits=candidate.Limits(max_connections=limit))
    contenders: dict[str, Callable[[], Awaitable[Any]]] = {"raw": raw}
    async with base, other:
        base_method, other_method = getattr(base, args.route), getattr(other, args.route)

        async def baseline_call() -> Any:
            return await base_method(**arguments)

        async def candidate_call() -> Any:
            return await other_method(**arguments)

        contenders["baseline"], contenders["candidate"] = baseline_call, candidate_call
        costs: dict[str, list[float]] = {name: [] for name in contenders}
        for call in contenders.values():
            await drive(call, max(500, 4 * args.concurrency), args.concurrency)
        for index in range(args.rounds):
            order = list(contenders) if index % 2 == 0 else list(reversed(contenders))
            for name in order:
                costs[name].append(await drive(contenders[name], args.calls, args.concurrency))
    await session.close()
    return costs


def compare_sync(
    url: str, baseline: Any, candidate: Any, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Rounds of sequential sync calls, alternating between the two copies."""
    arguments = ARGUMENTS[args.route]
    clients = {"baseline": baseline.SyncHTTPClient(url), "candidate": candidate.SyncHTTPClient(url)}
    costs: dict[str, list[float]] = {name: [] for name in clients}
    try:
        methods = {name: getattr(client, args.route) for name, client in clients.items()}
        for method in methods.values():
            for _ in range(500):
                method(**arguments)
        for index in range(args.rounds):
            order = list(methods) if index % 2 == 0 else list(reversed(methods))
            for name in order:
                method = methods[name]
                started = cpu_seconds()
                for _ in range(args.calls):
                    method(**arguments)
                costs[name].append((cpu_seconds() - started) / args.calls * 1e6)
    finally:
        for client in clients.values():
            client.close()
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", required=True, help="path of a modified asyncbento/ folder")
    parser.add_argument(
        "--baseline",
        default=os.path.join(ROOT, "asyncbento"),
        help="path of the asyncbento/ folder to compare with (default: this checkout's)",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--route", choices=sorted(ARGUMENTS), default="small")
    parser.add_argument("--sync", action="store_true", help="compare the sync clients instead")
    args = parser.parse_args()

    from run_all import standin

    with standin(pin_self=True) as url:
        baseline = import_copy(args.baseline, "asyncbento_baseline")
        candidate = import_copy(args.candidate, "asyncbento_candidate")
        if args.sync:
            costs = compare_sync(url, baseline, candidate, args)
        else:
            costs = asyncio.run(compare(url, baseline, candidate, args))
    for name, values in costs.items():
        print(f"{name:10} median {statistics.median(values):6.1f} µs CPU/request")
    for name in ("baseline", "candidate") if "raw" in costs else ():
        paired = [a - r for a, r in zip(costs[name], costs["raw"], strict=True)]
        print(f"{name:10} - raw: median paired difference {statistics.median(paired):+6.1f} µs")
    paired = [c - b for c, b in zip(costs["candidate"], costs["baseline"], strict=True)]
    print(f"candidate - baseline: median paired difference {statistics.median(paired):+6.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
