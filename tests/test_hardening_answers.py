"""Hardening: answers a hostile or broken server sends (too large, nested too deeply)."""

from __future__ import annotations

import asyncio
import gzip
import pathlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _clients import opened_client
from _misbehaving import MisbehavingServer, ok
from _misbehaving import misbehaving as misbehaving

from asyncbento import Limits, RetryPolicy
from asyncbento import exceptions as exc

MIB = 1024 * 1024
BOMB = gzip.compress(b'"' + b"x" * (5 * MIB) + b'"')  # 5 MiB of JSON in about 5 KiB


@pytest.fixture
async def small(
    client_kind: str, misbehaving: MisbehavingServer, tmp_path: pathlib.Path
) -> AsyncIterator[Any]:
    """A client allowing 1 MiB answers and 2 MiB files."""
    limits = Limits(max_answer_size=MIB, max_file_size=2 * MIB)
    async with opened_client(
        client_kind,
        misbehaving.url,
        limits=limits,
        retry=RetryPolicy(max_attempts=1),
        download_dir=tmp_path / "dl",
    ) as opened:
        yield opened


def gzipped(data: bytes, content_type: str = "application/json", **extra: str) -> Any:
    return ok(data, content_type=content_type, headers={"Content-Encoding": "gzip", **extra})


async def test_a_compressed_answer_is_bounded_after_decompression(
    small: Any, misbehaving: MisbehavingServer
) -> None:
    assert len(BOMB) < 64 * 1024
    misbehaving.script("/echo", gzipped(BOMB), ok(b'"' + b"y" * (2 * MIB) + b'"'))
    with pytest.raises(exc.ResponseTooLarge, match="larger than 1048576 bytes"):
        await small.echo(data={})
    with pytest.raises(exc.ResponseTooLarge):  # a plain answer with a Content-Length too
        await small.echo(data={})
    misbehaving.script("/echo", gzipped(gzip.compress(b'{"fine": 1}')))
    assert await small.echo(data={}) == {"fine": 1}  # the client goes on


async def test_the_default_limit_is_generous(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/echo", gzipped(BOMB))
    async with opened_client(client_kind, misbehaving.url) as client:
        assert len(await client.echo(data={})) == 5 * MIB


async def test_a_file_answer_is_bounded_and_leaves_nothing(
    small: Any, misbehaving: MisbehavingServer, tmp_path: pathlib.Path
) -> None:
    bomb = gzip.compress(b"\0" * (5 * MIB))
    misbehaving.script(
        "/download",
        gzipped(
            bomb,
            "application/octet-stream",
            **{"Content-Disposition": 'attachment; filename="a.bin"'},
        ),
    )
    with pytest.raises(exc.ResponseTooLarge, match="Limits.max_file_size"):
        await small.download(data={})
    assert list((tmp_path / "dl").iterdir()) == []


async def test_a_huge_error_body_keeps_its_status_class(
    small: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/echo", ok(b"z" * (3 * MIB), status=500, content_type="text/plain"))
    with pytest.raises(exc.InternalServerError) as failure:
        await small.echo(data={})
    assert failure.value.status == 500
    assert failure.value.message == "z" * 2000  # only the start of it was read
    assert await small.echo(data={"a": 1}) == {"data": {"a": 1}}


def trickled_head(delay: float) -> Any:
    """A stream whose status line and headers come one byte every ``delay`` seconds."""

    async def run(request: Any, writer: asyncio.StreamWriter) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(delay)
        writer.write(b"3\r\nok\n\r\n0\r\n\r\n")
        await writer.drain()
        return True

    return run


async def test_a_trickled_status_line_cannot_outlast_the_total(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    # Each byte resets the silence (read) limit; the total bounds the wait for the answer to
    # start. The head takes about 7 s to arrive.
    misbehaving.script("/stream", trickled_head(0.1))
    async with opened_client(client_kind, misbehaving.url, timeout=1, retry=None) as client:
        started = time.monotonic()
        with pytest.raises(exc.ReadTimeout):
            async for _ in client.stream(data={}):
                pass
        assert time.monotonic() - started < 4
        misbehaving.script("/stream", trickled_head(0.001))  # a slow start within the total
        assert [item async for item in client.stream(data={})] == ["ok\n"]
