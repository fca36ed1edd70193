"""The sync client's own cost per call: sync calls vs async calls, same client, same server.

    python benchmarks/shim_cost.py [--block 50] [--pairs 300] [--free]

Against the stand-in server (CPU 0), this process (CPU 1) makes a block of ``--block``
sequential calls through a ``SyncHTTPClient``, then a block through its async client on the
same loop, ``--pairs`` times, each pair in turned order; the median of the per-pair
differences in CPU time per call is what the sync facade adds. Pairing blocks a few tens of
milliseconds apart removes the drift of the machine's speed, which rounds of seconds do
not. The same measurement is part of ``run_all.py``.

``--free`` leaves this process free to run on any CPU (the server's too) instead of CPU 1
alone: the calling thread and the loop's thread may then run on different CPUs, and a hand-off
becomes a cross-CPU wake-up, whose price depends on the machine (on a VM, an interrupt
between virtual CPUs).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the stand-in and this checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--free", action="store_true", help="do not pin this process to CPU 1")
    args = parser.parse_args()

    from run_all import case_shim, standin

    with standin(pin_self=not args.free) as url:
        result = case_shim({"url": url, "block": args.block, "pairs": args.pairs})
    print(
        f"sync call: {result['sync_cpu_us']:.0f} µs CPU; "
        f"async call: {result['async_cpu_us']:.0f} µs CPU"
    )
    low, high = result["shim_us_quartiles"]
    print(
        f"sync shim cost: {result['shim_us']:.1f} µs CPU per call (median of {args.pairs} "
        f"paired blocks of {args.block} calls; quartiles {low:.0f} to {high:.0f})"
    )
    print(f"empty portal round trip: {result['portal_round_trip_us']:.1f} µs CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
