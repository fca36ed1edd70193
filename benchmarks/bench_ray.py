"""Ray Data: async actors (one engine across batches) vs the former per-batch calls.

    python benchmarks/bench_ray.py [--rows 800] [--batch-size 20] [--slow 2]

A local Ray (2 CPUs, 2 actors) sends every row to the example service's ``slow`` endpoint, which
sleeps as long as the row says: 10 ms, except one row per batch that takes ``--slow`` seconds.
The dataset is two large blocks (as from two big input files), so each actor is given many
batches per Ray task.
``BentoMLBatchCaller`` (an async callable class: each actor keeps calls in flight across the
batches Ray Data hands it) is compared with a sync callable class that calls ``client.map`` for
one batch at a time, as ``BentoMLBatchCaller`` did before: each batch then waits for its slowest
row before the next starts. Reports rows/s for both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class PerBatchCaller:
    """The former design: a sync client, one ``map`` per batch."""

    def __init__(self, url: str, concurrency: int) -> None:
        from asyncbento import SyncHTTPClient

        self._client = SyncHTTPClient(url)
        self._concurrency = concurrency

    def __call__(self, batch: Any) -> Any:
        inputs = [{"delay": float(d)} for d in batch["delay"]]
        results = self._client.map(
            "slow", inputs, concurrency=self._concurrency, return_exceptions=True
        )
        batch = batch.copy()
        batch["output"] = [None if isinstance(r, BaseException) else r for r in results]
        return batch


def run(ray: Any, caller: Any, kwargs: dict[str, Any], rows: int, size: int, slow: float) -> float:
    delays = [slow if i % size == 0 else 0.01 for i in range(rows)]
    # Two large blocks, as from two big input files: each actor gets many batches per task,
    # which is where Ray Data runs an async callable class's batches concurrently.
    dataset = ray.data.from_items([{"delay": d} for d in delays]).repartition(2).materialize()
    started = time.perf_counter()
    out = dataset.map_batches(
        caller,
        fn_constructor_kwargs=kwargs,
        concurrency=2,
        num_cpus=0.5,
        batch_size=size,
        batch_format="pandas",
    ).materialize()
    elapsed = time.perf_counter() - started
    answered = sum(1 for row in out.iter_rows() if row["output"] is not None)
    assert answered == rows, f"{answered} of {rows} rows answered"
    return rows / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--slow", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight per actor")
    args = parser.parse_args()

    import ray

    from asyncbento.integrations.ray import BentoMLBatchCaller
    from asyncbento.testing import BentoServer

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        examples = os.path.join(ROOT, "examples")
        with BentoServer("service:ExampleService", working_dir=examples) as server:
            common = (args.rows, args.batch_size, args.slow)
            async_kwargs = {"url": server.url, "endpoint": "slow", "concurrency": args.concurrency}
            per_batch = {"url": server.url, "concurrency": args.concurrency}
            old = run(ray, PerBatchCaller, per_batch, *common)
            new = run(ray, BentoMLBatchCaller, async_kwargs, *common)
    finally:
        ray.shutdown()
    print(
        f"{args.rows} rows, batches of {args.batch_size} with one {args.slow} s row each, "
        f"2 actors x {args.concurrency} calls"
    )
    print(f"per-batch calls (former):  {old:7.1f} rows/s")
    print(f"async actors (now):        {new:7.1f} rows/s  ({new / old:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
