"""Batch inference on Ray Data through asyncbento: JSONL in, JSONL out.

    python examples/ray_batch.py --url http://127.0.0.1:3000 --endpoint summarize \\
        --input examples/inputs/summarize.jsonl --output /tmp/ray-out [--actors 2]

Without ``--url`` it starts the example service itself. Each Ray actor holds one client and
keeps ``--concurrency`` calls in flight; size ``actors x concurrency`` to what the server can
take (see docs/guides/ray.md). Prints rows, failures and throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
import time
from collections.abc import Iterator

HERE = pathlib.Path(__file__).resolve().parent


@contextlib.contextmanager
def service(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from asyncbento.testing import BentoServer

    with BentoServer("service:ExampleService", working_dir=HERE) as server:
        yield server.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--endpoint", default="summarize")
    parser.add_argument("--input", default=str(HERE / "inputs" / "summarize.jsonl"))
    parser.add_argument("--output", default="/tmp/asyncbento-ray-output")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1, help="repeat the inputs N times")
    args = parser.parse_args()

    import ray

    from asyncbento.integrations.ray import BentoMLBatchCaller

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with service(args.url) as url:
            dataset = ray.data.read_json(args.input)
            if args.repeat > 1:
                dataset = dataset.union(*[dataset] * (args.repeat - 1))
            rows = dataset.count()
            started = time.perf_counter()
            results = dataset.map_batches(
                BentoMLBatchCaller,
                fn_constructor_kwargs={
                    "url": url,
                    "endpoint": args.endpoint,
                    "concurrency": args.concurrency,
                },
                concurrency=args.actors,
                num_cpus=0.5,  # the actors wait on the network: leave CPUs for reading
                batch_size=args.batch_size,
                batch_format="pandas",
            ).materialize()
            elapsed = time.perf_counter() - started
            results.write_json(args.output)
            failed = results.filter(lambda row: row["error"] is not None).count()
            answered = results.count()
    finally:
        ray.shutdown()
    print(
        json.dumps(
            {
                "rows": rows,
                "answered": answered,
                "failed": failed,
                "actors": args.actors,
                "concurrency_per_actor": args.concurrency,
                "seconds": round(elapsed, 2),
                "rows_per_second": round(rows / elapsed, 1),
                "output": args.output,
            }
        )
    )
    return 0 if answered == rows and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
