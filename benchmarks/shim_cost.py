"""The sync client's own cost per call: sync call vs async call, same client, same server.

    python benchmarks/shim_cost.py [--calls 2000] [--rounds 15]

Against the stand-in server (CPU 0), this process (CPU 1) makes ``--calls`` sequential calls
through a ``SyncHTTPClient``, then the same number through its async client on the same loop, in
alternating rounds; the median of the per-round differences in CPU time per call is what the sync
facade adds. Pairing the two in one process removes the process-to-process noise. The same
measurement is part of ``run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the stand-in and this checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    from run_all import case_shim, standin

    with standin(pin_self=True) as url:
        result = case_shim({"url": url, "n": args.calls, "rounds": args.rounds})
    print(
        f"sync call: {result['sync_cpu_us']:.0f} µs CPU; "
        f"async call: {result['async_cpu_us']:.0f} µs CPU"
    )
    print(
        f"sync shim cost: {result['shim_us']:.1f} µs CPU per call "
        f"(median of {args.rounds} paired rounds: "
        + ", ".join(f"{value:.0f}" for value in result["shim_us_rounds"])
        + ")"
    )
    print(f"empty portal round trip: {result['portal_round_trip_us']:.1f} µs CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
