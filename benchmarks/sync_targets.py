"""The sync client's three targets, measured alone (the same cases as ``run_all.py``).

    python benchmarks/sync_targets.py [--quick]

Starts the stand-in server (CPU 0) and runs, each in a fresh process pinned to CPU 1:
``shim`` (the sync facade's CPU per call over the async client's, paired in one process),
``sync_pair`` (sequential sync calls, asyncbento vs BentoML's ``SyncHTTPClient``, paired) and
``calls`` with 64 threads sharing one sync client (asyncbento, then BentoML, taken in turns,
median of the repeats). Prints each target with its measured value.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run_all import TWO_CPUS, Runner, plan, standin  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    args = parser.parse_args()
    settings = plan(args.quick)
    runner = Runner(1 if TWO_CPUS else None)
    with standin() as url:
        runner.warm_bytecode(url)
        shim = runner.case({"kind": "shim", "url": url, **settings["shim"]})
        pair = runner.case({"kind": "sync_pair", "url": url, **settings["sync_pair"]})
        rates: dict[str, list[float]] = {"asyncbento-sync": [], "bentoml-sync": []}
        sizes = {c: n for c, threads, n, extra in settings["calls"] if threads == 64 and not extra}
        spec = {"kind": "calls", "url": url, "route": "small", "concurrency": 64}
        spec["cap_s"] = settings["cap_s"]
        for _ in range(settings["repeats"]):
            for client in rates:
                for _attempt in range(3):  # BentoML's client sometimes fails when shared
                    outcome = runner.case({**spec, "client": client, "n": sizes[client]})
                    if "error" not in outcome:
                        rates[client].append(outcome["throughput"])
                        break
                    print(f"{client} run failed: {outcome['error']}", flush=True)
    print(
        f"shim: {shim['shim_us']:.1f} µs CPU per call (target < 50; quartiles "
        f"{shim['shim_us_quartiles']} of {shim['pairs']} paired blocks;"
        f" sync {shim['sync_cpu_us']:.0f}, async {shim['async_cpu_us']:.0f} µs CPU per call;"
        f" empty portal round trip {shim['portal_round_trip_us']:.1f} µs CPU)"
    )
    print(
        f"sequential: BentoML ÷ asyncbento wall time per call {pair['speed_ratio']:.2f}x"
        f" (target >= 1.7; {pair['asyncbento_wall_us']:.0f} vs {pair['bentoml_wall_us']:.0f} µs;"
        f" CPU ratio {pair['cpu_ratio']:.2f}x)"
    )
    if not all(rates.values()):
        print(f"64 threads: no successful run of every client ({rates})")
        return 1
    ours, theirs = (statistics.median(rates[c]) for c in ("asyncbento-sync", "bentoml-sync"))
    print(
        f"64 threads, one shared client: {ours:.0f} vs {theirs:.0f} calls/s = {ours / theirs:.2f}x"
        f" (target >= 3; runs {[round(r) for r in rates['asyncbento-sync']]}"
        f" vs {[round(r) for r in rates['bentoml-sync']]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
