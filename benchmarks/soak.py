"""Soak test: 10,000 calls at concurrency 256 against a server that fails ~10 % of requests.

The server (a separate process on loopback) answers ``POST /echo`` and, at random (seeded),
answers 503 with ``Retry-After: 0`` or resets the connection before responding. Every call must
end as a result or a typed asyncbento error; none may be lost. Prints attempts (requests the
server saw), successes, failures by type, and latency percentiles.

    python benchmarks/soak.py [--calls 10000] [--concurrency 256] [--failure-rate 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import struct
import sys
import time
from collections import Counter
from typing import Any

SCHEMA = {
    "name": "soak",
    "type": "service",
    "routes": [
        {
            "name": "echo",
            "route": "/echo",
            "batchable": False,
            "input": {
                "properties": {"i": {"title": "I", "type": "integer"}},
                "required": ["i"],
                "title": "Input",
                "type": "object",
            },
            "output": {"additionalProperties": True, "type": "object"},
            "is_task": False,
        }
    ],
}


class FlakyProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive server; fails POSTs at random (503 or a reset)."""

    def __init__(self, rate: float, rng: random.Random, counts: Counter[str]) -> None:
        self.rate, self.rng, self.counts = rate, rng, counts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[head_end + 4 : total]
            self.buffer = self.buffer[total:]
            method, path = head.split(" ", 2)[:2]
            if not self.respond(method, path, body):
                return

    def send(self, status: str, body: bytes, content_type: str, extra: str = "") -> None:
        assert self.transport is not None
        self.transport.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n".encode()
            + body
        )

    def respond(self, method: str, path: str, body: bytes) -> bool:
        assert self.transport is not None
        if path == "/readyz":
            self.send("200 OK", b"\n", "text/plain")
        elif path == "/schema.json":
            self.send("200 OK", json.dumps(SCHEMA).encode(), "application/json")
        elif method == "POST" and path == "/echo":
            self.counts["requests"] += 1
            roll = self.rng.random()
            if roll < self.rate / 2:
                self.counts["503"] += 1
                self.send(
                    "503 Service Unavailable",
                    b'{"error": "busy"}',
                    "application/json",
                    "Retry-After: 0\r\n",
                )
            elif roll < self.rate:
                self.counts["reset"] += 1
                sock = self.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.transport.abort()
                return False
            else:
                self.send("200 OK", body or b"{}", "application/json")
        else:
            self.send("404 Not Found", b"Not Found", "text/plain")
        return True


def serve(port: int, rate: float, seed: int, ready: Any, stop: Any, report: Any) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    counts: Counter[str] = Counter()
    rng = random.Random(seed)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: FlakyProtocol(rate, rng, counts), "127.0.0.1", port
        )
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()
        report.put(dict(counts))

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def soak(url: str, calls: int, concurrency: int) -> dict[str, Any]:
    from asyncbento import AsyncHTTPClient, Limits, RetryPolicy

    policy = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.5)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    attempts = 0
    semaphore = asyncio.Semaphore(concurrency)
    async with AsyncHTTPClient(
        url, retry=policy, limits=Limits(max_connections=concurrency)
    ) as client:

        async def one(i: int) -> None:
            nonlocal attempts
            async with semaphore:
                started = time.perf_counter()
                try:
                    result = await client.echo(i=i)
                    assert result == {"i": i}, result
                    outcomes["success"] += 1
                    attempts += 1  # the successful attempt; failures before it are below
                except Exception as error:
                    outcomes[f"error:{type(error).__name__}"] += 1
                    attempts += getattr(error, "attempts", 1)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": calls,
        "accounted": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "elapsed_s": round(elapsed, 2),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "attempts_on_failed_calls": attempts - outcomes["success"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--failure-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    port = free_port()
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    report: Any = multiprocessing.Queue()
    server = multiprocessing.Process(
        target=serve, args=(port, args.failure_rate, args.seed, ready, stop, report), daemon=True
    )
    server.start()
    if not ready.wait(10):
        print("server did not start", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    result = asyncio.run(soak(f"http://127.0.0.1:{port}", args.calls, args.concurrency))
    stop.set()
    server_counts = report.get(timeout=10)
    server.join(10)
    result["server_saw"] = server_counts
    print(json.dumps(result, indent=2))
    lost = result["calls"] - result["accounted"]
    print(
        f"soak: {result['calls']} calls, {server_counts.get('requests', 0)} attempts, "
        f"{result['outcomes'].get('success', 0)} succeeded, "
        f"{result['calls'] - result['outcomes'].get('success', 0)} failed, {lost} lost, "
        f"p99 {result['p99_ms']} ms"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
