"""Memory of large file transfers: upload and download a 512 MiB file, report peak RSS growth.

A local stand-in server (its own process) speaks the BentoML protocol for two endpoints:
``upload`` (a multipart file field, hashed and discarded as it arrives) and ``download`` (a
file answer streamed from a generator). The client process measures its own peak RSS
(``ru_maxrss``) before and after each transfer; files are streamed in chunks, so the growth
should stay within a few MiB of the chunk size.

    python benchmarks/bench_files.py [--size-mib 512]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import pathlib
import resource
import socket
import sys
import tempfile
import time
from typing import Any

ROUTES = [
    {
        "name": "upload",
        "route": "/upload",
        "input": {
            "properties": {"f": {"format": "binary", "title": "F", "type": "file"}},
            "required": ["f"],
            "type": "object",
        },
        "output": {"additionalProperties": True, "type": "object"},
        "is_task": False,
    },
    {
        "name": "download",
        "route": "/download",
        "input": {"properties": {"size": {"type": "integer"}}, "type": "object"},
        "output": {"format": "binary", "type": "file"},
        "is_task": False,
    },
]


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def schema(request: web.Request) -> web.Response:
        return web.json_response({"name": "files", "routes": ROUTES})

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        digest, size = hashlib.sha256(), 0
        async for part in reader:
            while chunk := await part.read_chunk(1 << 20):  # type: ignore[union-attr]
                digest.update(chunk)
                size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        size = (await request.json())["size"]
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": 'attachment; filename="big.bin"',
                "Content-Length": str(size),
            }
        )
        await response.prepare(request)
        block = bytes(range(256)) * 4096
        left = size
        while left > 0:
            piece = block[: min(left, len(block))]
            await response.write(piece)
            left -= len(piece)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=1 << 40)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/schema.json", schema)
    app.router.add_post("/upload", upload)
    app.router.add_post("/download", download)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=False)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_file(path: pathlib.Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            piece = block[: min(left, len(block))]
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


async def transfer(
    url: str, source: pathlib.Path, size: int, out_dir: pathlib.Path
) -> dict[str, Any]:
    from asyncbento import AsyncHTTPClient
    from asyncbento._files import CHUNK_SIZE

    results: dict[str, Any] = {"chunk_size_kib": CHUNK_SIZE // 1024}
    async with AsyncHTTPClient(url, timeout=600, download_dir=out_dir) as client:
        await client.upload(f=source.with_name("warmup.bin"))
        base = peak_rss_mib()
        started = time.perf_counter()
        answer = await client.upload(f=source)
        results["upload_s"] = round(time.perf_counter() - started, 2)
        results["upload_ok"] = answer["size"] == size
        results["upload_peak_rss_growth_mib"] = round(peak_rss_mib() - base, 1)
        base = peak_rss_mib()
        started = time.perf_counter()
        path = await client.download(size=size)
        results["download_s"] = round(time.perf_counter() - started, 2)
        results["download_ok"] = path.stat().st_size == size
        results["download_peak_rss_growth_mib"] = round(peak_rss_mib() - base, 1)
        path.unlink()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    time.sleep(0.5)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as folder:
        source = pathlib.Path(folder) / "big-input.bin"
        make_file(source, size)
        make_file(source.with_name("warmup.bin"), 1 << 20)
        results = asyncio.run(
            transfer(f"http://127.0.0.1:{port}", source, size, pathlib.Path(folder) / "out")
        )
    server.terminate()
    results["size_mib"] = args.size_mib
    for key, value in results.items():
        print(f"{key:32} {value}")
    return 0 if results["upload_ok"] and results["download_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
