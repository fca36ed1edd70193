"""A fast stand-in for a BentoML server, so that benchmarks measure the client.

Speaks the protocol subset the benchmarks use, shaped like ``bentoml serve`` answers:
``GET /readyz``, ``GET /schema.json``, ``POST /small`` (a small JSON object), ``POST /echo``
(the ~1.4 KB JSON body back), ``POST /stream`` (``n`` chunks of text/event-stream, chunked),
``POST /large`` (a ~1 MB JSON document, built once). HTTP/1.1 keep-alive on a raw asyncio
protocol (uvloop when installed), one process, optionally pinned to a CPU.

    python benchmarks/standin_server.py PORT [CPU]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

SCHEMA = {
    "name": "standin",
    "type": "service",
    "routes": [
        {
            "name": "small",
            "route": "/small",
            "batchable": False,
            "input": {
                "properties": {"text": {"title": "Text", "type": "string"}},
                "required": ["text"],
                "title": "Input",
                "type": "object",
            },
            "output": {"additionalProperties": True, "type": "object"},
            "is_task": False,
        },
        {
            "name": "echo",
            "route": "/echo",
            "batchable": False,
            "input": {
                "properties": {"data": {"title": "Data", "type": "object"}},
                "required": ["data"],
                "title": "Input",
                "type": "object",
            },
            "output": {"additionalProperties": True, "type": "object"},
            "is_task": False,
        },
        {
            "name": "stream",
            "route": "/stream",
            "batchable": False,
            "input": {
                "properties": {"n": {"default": 1000, "title": "N", "type": "integer"}},
                "title": "Input",
                "type": "object",
            },
            "output": {"type": "string", "is_stream": True, "media_type": "text/event-stream"},
            "is_task": False,
        },
        {
            "name": "large",
            "route": "/large",
            "batchable": False,
            "input": {"properties": {}, "title": "Input", "type": "object"},
            "output": {"additionalProperties": True, "type": "object"},
            "is_task": False,
        },
    ],
}

SMALL = b'{"label":"positive","score":0.98,"tokens":12}'
LARGE = json.dumps(
    {
        "rows": [
            {"id": i, "name": f"item-{i}", "score": i / 7, "tags": ["a", "b"]} for i in range(14500)
        ]
    }
).encode()
SCHEMA_BODY = json.dumps(SCHEMA).encode()
SERVER = b"Server: BentoML Service/standin\r\n"


def head(status: bytes, content_type: bytes, length: int) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\n"
        + SERVER
        + b"Content-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(length).encode()
        + b"\r\n\r\n"
    )


class StandIn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] - uvloop's are not asyncio's

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            header = bytes(self.buffer[:end])
            length = 0
            chunked = False
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                body, consumed = self.dechunk(end + 4)
                if consumed < 0:
                    return
            else:
                consumed = end + 4 + length
                if len(self.buffer) < consumed:
                    return
                body = bytes(self.buffer[end + 4 : consumed])
            del self.buffer[:consumed]
            method, path = header.split(b" ", 2)[:2]
            self.respond(method, path, body)

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

    def respond(self, method: bytes, path: bytes, body: bytes) -> None:
        assert self.transport is not None
        write = self.transport.write
        if path == b"/small":
            write(head(b"200 OK", b"application/json", len(SMALL)) + SMALL)
        elif path == b"/echo":
            payload = json.loads(body)["data"] if body else {}
            out = json.dumps(payload).encode()
            write(head(b"200 OK", b"application/json", len(out)) + out)
        elif path == b"/stream":
            n = json.loads(body).get("n", 1000) if body else 1000
            parts = [
                b"HTTP/1.1 200 OK\r\n"
                + SERVER
                + b"Content-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
            ]
            for i in range(n):
                chunk = b"tok%d\n" % i
                parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            parts.append(b"0\r\n\r\n")
            write(b"".join(parts))
        elif path == b"/large":
            write(head(b"200 OK", b"application/json", len(LARGE)) + LARGE)
        elif path == b"/readyz":
            write(head(b"200 OK", b"text/plain; charset=utf-8", 1) + b"\n")
        elif path == b"/schema.json":
            write(head(b"200 OK", b"application/json", len(SCHEMA_BODY)) + SCHEMA_BODY)
        else:
            write(head(b"404 Not Found", b"text/plain", 9) + b"Not Found")


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
