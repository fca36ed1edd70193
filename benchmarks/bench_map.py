"""Batch throughput and memory: ``client.map`` / ``client.imap`` vs a raw aiohttp worker loop.

Also ``map`` with a fixed window (``adaptive=False``): against this uncapped, fast stand-in the
adaptive window should cost nothing (within 5 %).

    python benchmarks/bench_map.py [--inputs 100000] [--concurrency 64]

Against the stand-in server (its own process, CPU 0), each case runs in a fresh process on
CPU 1 and sends the same small JSON call once per input, from a generator, with the same
concurrency. Reports throughput and peak RSS; ``imap`` is also run with a tenth of the inputs to
show that its memory does not grow with their number (``map`` keeps every result, by design).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs(count: int) -> Any:
    return ({"text": f"input number {i}"} for i in range(count))


async def raw_loop(url: str, count: int, concurrency: int) -> int:
    """The hand-written floor: N workers pulling from one generator, one session."""
    import aiohttp
    import msgspec

    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    headers = {"Content-Type": "application/json"}
    source = inputs(count)
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal done
            for item in source:
                async with session.post(
                    f"{url}/small", data=encoder.encode(item), headers=headers
                ) as r:
                    decoder.decode(await r.read())
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def asyncbento_map(url: str, count: int, concurrency: int) -> int:
    from asyncbento import AsyncHTTPClient, Limits

    async with AsyncHTTPClient(url, limits=Limits(max_connections=concurrency)) as client:
        results = await client.map("small", inputs(count), concurrency=concurrency)
    return len(results)


async def asyncbento_map_fixed(url: str, count: int, concurrency: int) -> int:
    from asyncbento import AsyncHTTPClient, Limits

    async with AsyncHTTPClient(url, limits=Limits(max_connections=concurrency)) as client:
        results = await client.map("small", inputs(count), concurrency=concurrency, adaptive=False)
    return len(results)


async def asyncbento_imap(url: str, count: int, concurrency: int) -> int:
    from asyncbento import AsyncHTTPClient, Limits

    done = 0
    async with AsyncHTTPClient(url, limits=Limits(max_connections=concurrency)) as client:
        async for _index, _result in client.imap("small", inputs(count), concurrency=concurrency):
            done += 1
    return done


CASES = {
    "raw": raw_loop,
    "map": asyncbento_map,
    "map_fixed": asyncbento_map_fixed,
    "imap": asyncbento_imap,
}


def run_case(case: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    started = time.perf_counter()
    done = asyncio.run(CASES[case](url, count, concurrency))
    elapsed = time.perf_counter() - started
    return {"done": done, "per_second": done / elapsed, "peak_rss_mib": peak_rss_mib()}


def in_subprocess(case: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    code = (
        f"import os, sys, json; sys.path.insert(0, {HERE!r}); sys.path.insert(0, {ROOT!r});"
        "hasattr(os, 'sched_setaffinity') and os.cpu_count() > 1 and os.sched_setaffinity(0, {1});"
        "import bench_map;"
        f"print(json.dumps(bench_map.run_case({case!r}, {url!r}, {count}, {concurrency})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900
    )
    return json.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    from run_all import standin

    rows = []
    with standin() as url:
        for case, count in (
            ("raw", args.inputs),
            ("map", args.inputs),
            ("imap", args.inputs),
            ("imap", args.inputs // 10),
            ("map_fixed", args.inputs),
        ):
            result = in_subprocess(case, url, count, args.concurrency)
            rows.append((case, count, result))
            print(
                f"{case:9} inputs={count:>7} done={result['done']:>7} "
                f"{result['per_second']:8.0f}/s peak RSS {result['peak_rss_mib']:6.1f} MiB",
                flush=True,
            )
    raw = rows[0][2]["per_second"]
    print(f"map throughput vs raw loop: {rows[1][2]['per_second'] / raw:.2f}x")
    print(f"imap throughput vs raw loop: {rows[2][2]['per_second'] / raw:.2f}x")
    print(
        "map, adaptive window vs fixed (uncapped service): "
        f"{rows[1][2]['per_second'] / rows[4][2]['per_second']:.3f}x"
    )
    print(
        f"imap peak RSS, {rows[2][1]} vs {rows[3][1]} inputs: "
        f"{rows[2][2]['peak_rss_mib']:.1f} vs {rows[3][2]['peak_rss_mib']:.1f} MiB"
    )
    return 0 if all(r[2]["done"] == r[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
