"""The sync client's own cost per call: sync call vs async call, same client, same server.

    python benchmarks/shim_cost.py [--calls 6000] [--rounds 5]

Against the stand-in server (CPU 0), this process (CPU 1) makes ``--calls`` sequential calls
through a ``SyncHTTPClient``, then the same number through its async client on the same loop, in
alternating rounds; the difference in CPU time per call is what the sync facade adds. Pairing
the two in one process removes the process-to-process noise of ``run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from run_all import free_port, start_server

    two_cpus = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    port = free_port()
    server = start_server(port, 0 if two_cpus else None)
    if two_cpus:
        os.sched_setaffinity(0, {1})
    from asyncbento import SyncHTTPClient
    from asyncbento._portal import get_portal

    sync_costs, async_costs = [], []
    try:
        with SyncHTTPClient(f"http://127.0.0.1:{port}") as client:
            for _ in range(500):
                client.small(text="x")

            async def async_calls() -> None:
                for _ in range(args.calls):
                    await client._async.small(text="x")

            for _ in range(args.rounds):
                started = cpu_seconds()
                for _ in range(args.calls):
                    client.small(text="x")
                sync_costs.append((cpu_seconds() - started) / args.calls * 1e6)
                started = cpu_seconds()
                get_portal().call(async_calls())
                async_costs.append((cpu_seconds() - started) / args.calls * 1e6)
    finally:
        server.terminate()
        server.wait(10)
    sync_cost, async_cost = statistics.median(sync_costs), statistics.median(async_costs)
    print(f"sync call: {sync_cost:.0f} µs CPU; async call: {async_cost:.0f} µs CPU")
    print(f"sync shim cost: {sync_cost - async_cost:.0f} µs CPU per call (median of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
