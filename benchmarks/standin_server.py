"""A fast stand-in for a BentoML server, so that benchmarks measure the client.

Speaks the subset of the protocol the benchmarks use, shaped like ``bentoml serve`` answers
(PROTOCOL.md): ``GET /readyz``, ``GET /schema.json`` and

- ``POST /small``      {"text": str} -> a small JSON object
- ``POST /echo``       {"data": object} -> that object back (~1.4 KB in the benchmarks)
- ``POST /stream``     {"n": int = 1000, "pace_us": int = 0, "sse": bool = false} -> ``n``
  text/event-stream chunks ("tok<i>\\n", one HTTP chunk each, as BentoML sends a stream's
  items; with ``sse``, each a Server-Sent Event ``data: tok<i>``): all in one write, or one
  every ``pace_us`` µs
- ``POST /large``      {} -> a ~1.2 MB JSON document of 14,500 small records (built once)
- ``POST /embeddings`` {} -> a ~1.1 MB JSON document of 136 x 384 float32 values (built once)
- ``POST /shout``      root text input -> the text upper-cased (text/plain)

HTTP/1.1 keep-alive on a raw asyncio protocol (uvloop when installed), one process, optionally
pinned to a CPU. Request bodies may come with ``Content-Length`` or chunked; ``GET /_stats``
tells how many of each it has seen (used by run_all.py's conformance check).

    python benchmarks/standin_server.py PORT [CPU]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
import sys
import time
from typing import Any


def _route(name: str, inputs: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "route": f"/{name}",
        "batchable": False,
        "input": inputs,
        "output": output,
        "is_task": False,
    }


def _object_input(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"properties": properties, "title": "Input", "type": "object"}
    if required:
        schema["required"] = required
    return schema


DICT_OUTPUT = {"additionalProperties": True, "type": "object"}
SCHEMA: dict[str, Any] = {
    "name": "standin",
    "type": "service",
    "routes": [
        _route(
            "echo",
            _object_input({"data": {"title": "Data", "type": "object"}}, ["data"]),
            DICT_OUTPUT,
        ),
        _route("embeddings", _object_input({}, []), DICT_OUTPUT),
        _route("large", _object_input({}, []), DICT_OUTPUT),
        _route("shout", {"type": "string", "root_input": True}, {"type": "string"}),
        _route(
            "small",
            _object_input({"text": {"title": "Text", "type": "string"}}, ["text"]),
            DICT_OUTPUT,
        ),
        _route(
            "stream",
            _object_input(
                {
                    "n": {"default": 1000, "title": "N", "type": "integer"},
                    "pace_us": {"default": 0, "title": "Pace Us", "type": "integer"},
                    "sse": {"default": False, "title": "Sse", "type": "boolean"},
                },
                [],
            ),
            {"type": "string", "is_stream": True, "media_type": "text/event-stream"},
        ),
    ],
}
SCHEMA["paths"] = {route["route"]: {"mounted": False} for route in SCHEMA["routes"]}
ROUTE_PATHS = {route["route"].encode() for route in SCHEMA["routes"]}


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


SMALL = b'{"label":"positive","score":0.98,"tokens":12}'
LARGE = json.dumps(
    {
        "rows": [
            {"id": i, "name": f"item-{i}", "score": i / 7, "tags": ["a", "b"]} for i in range(14500)
        ]
    }
).encode()
_random = random.Random(7)
EMBEDDINGS = json.dumps(
    {"embeddings": [[_float32(_random.gauss(0.0, 0.05)) for _ in range(384)] for _ in range(136)]}
).encode()
SCHEMA_BODY = json.dumps(SCHEMA).encode()
SERVER = b"Server: BentoML Service/standin\r\n"
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    + SERVER
    + b"Content-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
)
STATS = {"content-length": 0, "chunked": 0, "empty": 0}


def answer(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\n"
        + SERVER
        + b"Content-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class StandIn(asyncio.Protocol):
    """One connection: parses HTTP/1.1 requests and answers each in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's are not asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            header = bytes(self.buffer[:end])
            length = 0
            chunked = close = False
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if chunked:
                body, consumed = self.dechunk(end + 4)
                if consumed < 0:
                    return
                STATS["chunked"] += 1
            else:
                consumed = end + 4 + length
                if len(self.buffer) < consumed:
                    return
                body = bytes(self.buffer[end + 4 : consumed])
                STATS["content-length" if length else "empty"] += 1
            del self.buffer[:consumed]
            method, path = header.split(b" ", 2)[:2]
            path = path.partition(b"?")[0]
            if method == b"POST" and path == b"/stream":
                self.stream(json.loads(body) if body else {})
            else:
                self.transport.write(self.respond(method, path, body))
            if close:
                self.transport.close()
                self.transport = None

    def dechunk(self, start: int) -> tuple[bytes, int]:
        body = bytearray()
        position = start
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return b"", -1
            size = int(self.buffer[position:line_end].split(b";")[0], 16)
            if len(self.buffer) < line_end + 2 + size + 2:
                return b"", -1
            body += self.buffer[line_end + 2 : line_end + 2 + size]
            position = line_end + 2 + size + 2
            if size == 0:
                return bytes(body), position

    def stream(self, arguments: dict[str, Any]) -> None:
        """``n`` chunks, one per yielded string as BentoML sends them: all at once (a client-bound
        burst), or one every ``pace_us`` microseconds, each on its own (spinning: the server has
        its own CPU, and no sleep is that short)."""
        assert self.transport is not None
        n, pace = int(arguments.get("n", 1000)), int(arguments.get("pace_us", 0))
        item = b"data: tok%d\n\n" if arguments.get("sse") else b"tok%d\n"  # sse: one event each
        chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in (item % i for i in range(n))]
        if pace <= 0:
            self.transport.write(STREAM_HEAD + b"".join(chunks) + b"0\r\n\r\n")
            return
        self.transport.write(STREAM_HEAD)
        step = pace / 1e6
        due = time.perf_counter()
        for chunk in chunks:
            due += step
            while time.perf_counter() < due:
                pass
            self.transport.write(chunk)
        self.transport.write(b"0\r\n\r\n")

    @staticmethod
    def respond(method: bytes, path: bytes, body: bytes) -> bytes:
        if method == b"POST":
            if path == b"/small":
                return answer(b"200 OK", b"application/json", SMALL)
            if path == b"/echo":
                payload = json.loads(body)["data"] if body else {}
                return answer(b"200 OK", b"application/json", json.dumps(payload).encode())
            if path == b"/large":
                return answer(b"200 OK", b"application/json", LARGE)
            if path == b"/embeddings":
                return answer(b"200 OK", b"application/json", EMBEDDINGS)
            if path == b"/shout":
                return answer(b"200 OK", b"text/plain; charset=utf-8", body.upper())
        elif method == b"GET":
            if path == b"/readyz":
                return answer(b"200 OK", b"text/plain; charset=utf-8", b"\n")
            if path == b"/schema.json":
                return answer(b"200 OK", b"application/json", SCHEMA_BODY)
            if path == b"/_stats":
                return answer(b"200 OK", b"application/json", json.dumps(STATS).encode())
        if path in ROUTE_PATHS or path in (b"/readyz", b"/schema.json"):
            return answer(b"405 Method Not Allowed", b"text/plain", b"Method Not Allowed")
        return answer(b"404 Not Found", b"text/plain", b"Not Found")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StandIn, "127.0.0.1", port, backlog=2048)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    if len(sys.argv) > 2 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(sys.argv[2])})
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
