"""CPU cost of one empty round trip through the sync client's portal (no I/O).

    python benchmarks/portal_round_trip.py

This is the part of every sync call that the async client does not pay: handing a coroutine
to the background loop and waiting for it.
"""

from __future__ import annotations

import os
import resource
import time

from asyncbento._portal import get_portal


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def nothing() -> int:
    return 1


def main() -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    portal = get_portal()
    for _ in range(2000):
        portal.call(nothing())
    calls = 20000
    started, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(calls):
        portal.call(nothing())
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"portal round trip: {wall / calls * 1e6:.1f} µs wall, {cpu / calls * 1e6:.1f} µs CPU")


if __name__ == "__main__":
    main()
