"""A local HTTP/1.1 server that speaks a little BentoML and misbehaves on purpose.

It runs on its own loop in a background thread (so sync and async clients can both use it)
and answers ``/readyz`` and ``/schema.json`` normally. For every other path, each request
takes the next scripted behaviour (``server.script(path, behaviour, ...)``), or the path's
default. Behaviours are coroutines ``(request, writer) -> keep_alive``; factories below make
the faults the clients must survive: resets, slow headers, truncated bodies, garbage, floods.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _clients import opened_client

from asyncbento import RetryPolicy


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]


def route(name: str, output: dict[str, Any], *, is_task: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "route": f"/{name}",
        "batchable": False,
        "input": {
            "properties": {"data": {"title": "Data", "type": "object"}},
            "title": "Input",
            "type": "object",
        },
        "output": output,
        "is_task": is_task,
    }


SCHEMA = {
    "name": "misbehaving",
    "type": "service",
    "routes": [
        route("echo", {"additionalProperties": True, "type": "object"}),
        route("text", {"type": "string"}),
        route("stream", {"type": "string", "is_stream": True, "media_type": "text/event-stream"}),
        route("events", {"type": "string", "is_stream": True, "media_type": "text/event-stream"}),
        route("bytestream", {"type": "string", "format": "binary", "is_stream": True}),
        route("download", {"type": "file", "format": "binary"}),
        route("job", {"additionalProperties": True, "type": "object"}, is_task=True),
    ],
}


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ok(
    body: Any = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Behaviour:
    """A normal answer (dict/list bodies are JSON-encoded; None echoes the request body)."""

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        if body is None:
            data = request.body or b"{}"
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        writer.write(
            _head(
                status,
                {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})},
            )
            + (b"" if request.method == "HEAD" else data)  # HEAD: the headers only
        )
        await writer.drain()
        return True

    return run


def error(status: int, message: str = "failed", retry_after: str | None = None) -> Behaviour:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return ok({"error": message}, status=status, headers=headers)


def reset() -> Behaviour:
    """Abort the connection (RST) after reading the request, before any response byte."""

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    return run


def slow_headers(delay: float, then: Behaviour | None = None) -> Behaviour:
    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(delay)
        return await (then or ok())(request, writer)

    return run


def truncated(data: bytes, declared: int) -> Behaviour:
    """Declare ``declared`` bytes, send fewer, then close."""

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            _head(200, {"Content-Type": "application/json", "Content-Length": str(declared)}) + data
        )
        await writer.drain()
        writer.close()
        return False

    return run


def chunks(
    parts: list[bytes],
    *,
    delay: float = 0.0,
    then: str = "end",
    content_type: str = "text/event-stream; charset=utf-8",
    headers: dict[str, str] | None = None,
    one_write: bool = False,
    cut_short: bytes = b"",
) -> Behaviour:
    """A chunked body; ``then`` is "end" (proper 0-chunk), "close" or "reset" (cut short).

    ``one_write``: the head, every chunk and the end (or, cut short, a last chunk's first
    bytes ``cut_short``, announced twice as long, and the drop) go out in a single write, so
    that the client's first network read brings them all.
    """

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        head = _head(
            200, {"Content-Type": content_type, "Transfer-Encoding": "chunked", **(headers or {})}
        )
        if one_write:
            framed = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts)
            if then == "end":
                writer.write(head + framed + b"0\r\n\r\n")
                await writer.drain()
                return True
            writer.write(head + framed + f"{2 * len(cut_short):x}\r\n".encode() + cut_short)
            await writer.drain()
            if then == "reset":
                return await reset()(request, writer)
            writer.close()
            return False
        writer.write(head)
        for part in parts:
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
            if delay:
                await asyncio.sleep(delay)
        if then == "end":
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if then == "reset":
            return await reset()(request, writer)
        writer.close()
        return False

    return run


def raw_chunked(pieces: list[bytes], *, delay: float = 0.05) -> Behaviour:
    """A chunked answer whose body bytes (framing included, written by the test) go out in
    the given pieces, ``delay`` apart: a chunk, or its size line, can be cut anywhere."""

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            _head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        )
        for piece in pieces:
            await writer.drain()
            await asyncio.sleep(delay)
            writer.write(piece)
        await writer.drain()
        return True

    return run


def huge(size: int) -> Behaviour:
    """A valid JSON string answer of about ``size`` bytes, sent in pieces."""

    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            _head(200, {"Content-Type": "application/json", "Content-Length": str(size + 2)}) + b'"'
        )
        piece = b"x" * 65536
        left = size
        while left > 0:
            writer.write(piece[: min(left, len(piece))])
            left -= len(piece)
            await writer.drain()
        writer.write(b'"')
        await writer.drain()
        return True

    return run


def hang() -> Behaviour:
    async def run(request: Request, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(3600)
        return False

    return run


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition()`` held (checked every 20 ms); fails the test after ``seconds``."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"still not true after {elapsed:.1f}s"
        time.sleep(0.02)
    return time.monotonic() - started


@dataclass
class MisbehavingServer:
    """The server; use as a context manager or through the ``misbehaving`` fixture."""

    schema: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(SCHEMA)))
    requests: list[Request] = field(default_factory=list)
    ready: bool = True  # False: /readyz answers 503 (a server that never becomes ready)

    def __post_init__(self) -> None:
        self._scripts: dict[str, list[Behaviour]] = defaultdict(list)
        self._defaults: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.StreamReader] = set()
        self.url = ""

    def script(self, path: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests to ``path``, one each."""
        with self._lock:
            self._scripts[path].extend(behaviours)

    def default(self, path: str, behaviour: Behaviour) -> None:
        """What ``path`` does once its script is used up."""
        with self._lock:
            self._defaults[path] = behaviour

    def count(self, path: str) -> int:
        """Requests seen on ``path``."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def _next(self, path: str) -> Behaviour:
        with self._lock:
            if self._scripts[path]:
                return self._scripts[path].pop(0)
            return self._defaults.get(path, ok())

    def open_connections(self) -> int:
        """Connections the client has not closed yet (it sent no FIN), as the server sees them."""

        async def count() -> int:
            return sum(1 for reader in self._connections if not reader.at_eof())

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(reader)
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    break
                if request.path == "/readyz":
                    status = 200 if self.ready else 503
                    keep = await ok(b"\n", status=status, content_type="text/plain")(
                        request, writer
                    )
                elif request.path == "/schema.json":
                    keep = await ok(self.schema)(request, writer)
                else:
                    with self._lock:
                        self.requests.append(request)
                    keep = await self._next(request.path)(request, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(reader)
            if not writer.transport.is_closing():
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                body += await reader.readexactly(size)
                await reader.readline()
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body)

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def misbehaving() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)


@pytest.fixture
async def misbehaving_client(
    client_kind: str, misbehaving: MisbehavingServer, tmp_path: pathlib.Path
) -> AsyncIterator[Any]:
    """A client of either kind for the ``misbehaving`` server: fast retries, 5 s timeout."""
    async with opened_client(
        client_kind, misbehaving.url, retry=FAST, timeout=5, download_dir=tmp_path / "dl"
    ) as opened:
        yield opened
