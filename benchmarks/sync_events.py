"""Server-Sent Events through the sync client's ``events()`` against the async client's.

    python benchmarks/sync_events.py [--events 2000] [--rounds 7]

Against the stand-in server (CPU 0), this process (CPU 1) reads a stream of ``--events``
events sent at once (``data: tok<i>``, one per HTTP chunk) through ``client.stream.events()``:
with a ``SyncHTTPClient``, then with the same client's async client, in rounds taken in turns.
Reported: the median CPU µs per event of each. Both parse every event (the same parser); the
sync one also crosses the thread, read ahead on the loop as any stream is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the stand-in and this checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from run_all import standin

    from asyncbento import SyncHTTPClient
    from asyncbento._portal import get_portal

    costs: dict[str, list[float]] = {"sync": [], "async": []}
    with standin(pin_self=True) as url, SyncHTTPClient(url) as client:
        portal = get_portal()

        def sync_read() -> int:
            return sum(1 for _ in client.stream.events(n=args.events, sse=True))

        async def async_read() -> int:
            return len([e async for e in client._async.stream.events(n=args.events, sse=True)])

        assert sync_read() == portal.call(async_read()) == args.events
        for index in range(args.rounds):
            for kind in ("sync", "async") if index % 2 == 0 else ("async", "sync"):
                started = time.process_time()
                count = sync_read() if kind == "sync" else portal.call(async_read())
                assert count == args.events, (kind, count)
                costs[kind].append((time.process_time() - started) / count * 1e6)
    sync, asynchronous = statistics.median(costs["sync"]), statistics.median(costs["async"])
    print(
        f"events(): sync {sync:.1f} µs CPU per event, async {asynchronous:.1f} "
        f"(median of {args.rounds} rounds of {args.events} events)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
