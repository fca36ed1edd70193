"""Cold start to the first result: a generated typed client vs the dynamic client.

    python benchmarks/bench_generated.py [--rounds 30] [--standin]

Serves the example service (``examples/service.py``, 32 endpoints) with ``bentoml serve``, or
with ``--standin`` the stand-in server (a 6-route schema), and writes a typed client module
for it with ``asyncbento generate``. Each round then runs, in a fresh interpreter each and in
alternating order, four programs that import asyncbento (and the generated module), make a
client, set it up and print the result of one call (``add(1, 2)``; ``shout`` on the stand-in):
the dynamic and generated clients, async and sync. Each program times itself from its first
line (``import time``) to the result, so interpreter start-up, the same for all, is left out;
``set-up + call`` is the part after the imports. Reports the median and p90 of each over the
rounds, and the generated client's saving. The saving is the ``/schema.json`` round trip and
its decoding: the generated client still waits for ``/readyz`` like the dynamic one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

PROGRAM = """\
import time
started = time.perf_counter()
import asyncio
{imports}
imported = time.perf_counter()
{body}
ended = time.perf_counter()
assert str(result) == {expected!r}, result
print(ended - started, ended - imported)
"""

ASYNC_BODY = """\
async def main():
    async with {cls}({url!r}) as client:
        return await client.{call}
result = asyncio.run(main())"""

SYNC_BODY = """\
with {cls}({url!r}) as client:
    result = client.{call}"""

VARIANTS = {
    "dynamic async": ("from asyncbento import AsyncHTTPClient", "AsyncHTTPClient", ASYNC_BODY),
    "generated async": ("from service_client import Client", "Client", ASYNC_BODY),
    "dynamic sync": ("from asyncbento import SyncHTTPClient", "SyncHTTPClient", SYNC_BODY),
    "generated sync": ("from service_client import SyncClient", "SyncClient", SYNC_BODY),
}


def write_module(url: str, folder: str) -> None:
    from asyncbento._codegen import generate

    with urllib.request.urlopen(f"{url}/schema.json") as answer:
        document = json.load(answer)
    source = generate(document, class_name="Bench")
    source += "\nClient = BenchAsyncClient\nSyncClient = BenchSyncClient\n"
    with open(os.path.join(folder, "service_client.py"), "w") as handle:
        handle.write(source)


def run_once(variant: str, url: str, call: str, expected: str, folder: str) -> tuple[float, float]:
    imports, cls, body = VARIANTS[variant]
    program = PROGRAM.format(
        imports=imports,
        body=body.format(cls=cls, url=url, call=call),
        expected=expected,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, folder]))
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, cwd=folder
    )
    if done.returncode:
        raise RuntimeError(f"{variant} failed:\n{done.stderr}")
    total, setup = map(float, done.stdout.split())
    return total, setup


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
    }


def measure(url: str, call: str, expected: str, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        write_module(url, folder)
        for variant in VARIANTS:  # warm the .pyc caches and the server
            run_once(variant, url, call, expected, folder)
        totals: dict[str, list[float]] = {v: [] for v in VARIANTS}
        setups: dict[str, list[float]] = {v: [] for v in VARIANTS}
        order = list(VARIANTS)
        for number in range(rounds):
            for variant in order if number % 2 == 0 else reversed(order):
                total, setup = run_once(variant, url, call, expected, folder)
                totals[variant].append(total)
                setups[variant].append(setup)
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        results[variant] = {
            "total": summary(totals[variant]),
            "setup_and_call": summary(setups[variant]),
        }
    return results


def report(results: dict[str, Any]) -> None:
    print("| client | total: median | p90 | set-up + call: median | p90 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for variant, row in results.items():
        total, setup = row["total"], row["setup_and_call"]
        print(
            f"| {variant} | {total['median_ms']:.1f} ms | {total['p90_ms']:.1f} ms "
            f"| {setup['median_ms']:.1f} ms | {setup['p90_ms']:.1f} ms |"
        )
    for kind in ("async", "sync"):
        dynamic = results[f"dynamic {kind}"]["setup_and_call"]["median_ms"]
        generated = results[f"generated {kind}"]["setup_and_call"]["median_ms"]
        print(
            f"{kind}: generated saves {dynamic - generated:.2f} ms of set-up + first call "
            f"({generated / dynamic:.0%} of the dynamic client's)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--standin", action="store_true", help="the stand-in server instead")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    if args.standin:
        from run_all import standin

        with standin() as url:
            results = measure(url, 'shout("hi")', "HI", args.rounds)
    else:
        from asyncbento.testing import BentoServer

        examples = os.path.join(ROOT, "examples")
        with BentoServer("service:ExampleService", working_dir=examples) as server:
            results = measure(server.url, "add(1, 2)", "3", args.rounds)
    report(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
