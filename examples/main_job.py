"""The main job: start the example BentoML service locally and call it through asyncbento.

Starts ``bentoml serve service:ExampleService`` on a free loopback port, runs
``asyncbento batch`` over the bundled ``examples/inputs/summarize.jsonl`` (printing its summary
line), checks every output line, then drives the service with both clients: a stream, a
task, a file round trip. Exits non-zero if anything went wrong.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import asyncbento
from asyncbento.testing import BentoServer

HERE = pathlib.Path(__file__).resolve().parent
INPUTS = HERE / "inputs" / "summarize.jsonl"


def load_inputs() -> list[dict[str, str]]:
    return [json.loads(line) for line in INPUTS.read_text().splitlines()]


def run_batch(url: str) -> dict[str, object]:
    """``asyncbento batch`` as a user would run it; then check every output line."""
    inputs = load_inputs()
    with tempfile.TemporaryDirectory() as folder:
        output = pathlib.Path(folder) / "summaries.jsonl"
        command = [
            sys.executable,
            "-m",
            "asyncbento",
            "batch",
            url,
            "summarize",
            "--input",
            str(INPUTS),
            "--output",
            str(output),
            "--concurrency",
            "64",
        ]
        print("$ asyncbento batch", url, "summarize --input", INPUTS.name, "--output", output.name)
        started = time.perf_counter()
        finished = subprocess.run(command, check=False)
        elapsed = time.perf_counter() - started
        lines = [json.loads(line) for line in output.read_text().splitlines()]
    outputs = {line["index"]: line.get("output") for line in lines}
    expected = {
        i: f"{len(a['text'].split())} words: {a['text'][:20]}" for i, a in enumerate(inputs)
    }
    return {
        "batch_exit_code": finished.returncode,
        "batch_inputs": len(inputs),
        "batch_succeeded": sum(1 for i, v in expected.items() if outputs.get(i) == v),
        "batch_failed": sum(1 for i, v in expected.items() if outputs.get(i) != v),
        "batch_seconds": round(elapsed, 2),
    }


async def run_async(url: str) -> dict[str, object]:
    async with asyncbento.AsyncHTTPClient(url) as client:
        print(f"service {client.service_name!r}: {len(client.endpoints)} endpoints")
        stream = "".join([chunk async for chunk in client.stream_async(n=5)])
        task = await client.slow_square.submit(x=12, delay=0.1)
        square = await task.result(timeout=30)
    return {"stream": stream.split(), "task": square}


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
        summary = run_batch(server.url)
        summary.update(asyncio.run(run_async(server.url)))
        summary.update(run_sync(server.url))
    print(json.dumps(summary, indent=2))
    ok = (
        summary["batch_exit_code"] == 0
        and summary["batch_failed"] == 0
        and summary["add"] == 42
        and summary["file_round_trip"] is True
        and summary["task"] == {"x": 12, "square": 144}
    )
    print("main job:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
