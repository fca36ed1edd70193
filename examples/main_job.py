"""The main job: start the example BentoML service locally and call it through asyncbento.

Starts ``bentoml serve service:ExampleService`` on a free loopback port, then drives it with
both clients: single calls of each kind, a stream, a task, a file round trip, and a batch of
summaries over ``examples/inputs/summarize.jsonl`` at bounded concurrency. Prints a summary
and exits non-zero if anything went wrong.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile
import time

import asyncbento
from asyncbento.testing import BentoServer

HERE = pathlib.Path(__file__).resolve().parent
INPUTS = HERE / "inputs" / "summarize.jsonl"


def load_inputs() -> list[dict[str, str]]:
    if INPUTS.exists():
        return [json.loads(line) for line in INPUTS.read_text().splitlines() if line.strip()]
    return [{"text": f"sentence number {i} of the main job"} for i in range(200)]


async def run_async(url: str) -> dict[str, object]:
    inputs = load_inputs()
    async with asyncbento.AsyncHTTPClient(url) as client:
        print(f"service {client.service_name!r}: {len(client.endpoints)} endpoints")
        semaphore = asyncio.Semaphore(64)

        async def one(arguments: dict[str, str]) -> str:
            async with semaphore:
                return await client.summarize(**arguments)  # type: ignore[no-any-return]

        started = time.perf_counter()
        results = await asyncio.gather(*(one(a) for a in inputs), return_exceptions=True)
        elapsed = time.perf_counter() - started
        failures = [r for r in results if isinstance(r, BaseException)]
        stream = "".join([chunk async for chunk in client.stream_async(n=5)])
        task = await client.slow_square.submit(x=12, delay=0.1)
        square = await task.result(timeout=30)
    return {
        "batch_inputs": len(inputs),
        "batch_succeeded": len(inputs) - len(failures),
        "batch_failed": len(failures),
        "batch_seconds": round(elapsed, 2),
        "stream": stream.split(),
        "task": square,
    }


def run_sync(url: str) -> dict[str, object]:
    with asyncbento.SyncHTTPClient(url) as client, tempfile.TemporaryDirectory() as folder:
        source = pathlib.Path(folder) / "hello.txt"
        source.write_bytes(b"hello, bento")
        reversed_path = client.reverse_file(f=source)
        return {
            "add": client.add(2, b=40),
            "shout": client.shout("hello"),
            "file_round_trip": reversed_path.read_bytes() == b"hello, bento"[::-1],
        }


def main() -> int:
    with BentoServer("service:ExampleService", working_dir=HERE) as server:
        print(f"example service at {server.url}")
        summary = asyncio.run(run_async(server.url))
        summary.update(run_sync(server.url))
    print(json.dumps(summary, indent=2))
    ok = (
        summary["batch_failed"] == 0
        and summary["add"] == 42
        and summary["file_round_trip"] is True
        and summary["task"] == {"x": 12, "square": 144}
    )
    print("main job:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
