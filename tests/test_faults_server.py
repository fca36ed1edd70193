"""Fault injection over real sockets: a local server that misbehaves on purpose.

Every test runs through both clients and asserts the exception type and the number of
requests the server saw.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import itertools
import logging
import pathlib
import time
from typing import Any

import pytest
from _clients import close_client, open_client
from _misbehaving import (
    FAST,
    MisbehavingServer,
    chunks,
    error,
    huge,
    ok,
    raw_chunked,
    reset,
    slow_headers,
    truncated,
)
from _misbehaving import misbehaving as misbehaving
from _misbehaving import misbehaving_client as misbehaving_client

from asyncbento import ResultStatus, Timeout
from asyncbento import exceptions as exc


@pytest.fixture
def client(misbehaving_client: Any) -> Any:
    return misbehaving_client


async def test_reset_before_response_is_retried(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/echo", reset(), reset())
    assert await client.echo(data={"a": 1}) == {"data": {"a": 1}}
    assert misbehaving.count("/echo") == 3


async def test_reset_every_time_gives_up_typed(client: Any, misbehaving: MisbehavingServer) -> None:
    misbehaving.default("/echo", reset())
    with pytest.raises(exc.ConnectionLost) as info:
        await client.echo(data={})
    assert info.value.attempts == 3
    assert misbehaving.count("/echo") == 3


async def test_503_retry_after_then_ok(client: Any, misbehaving: MisbehavingServer) -> None:
    misbehaving.script("/echo", error(503, "busy", retry_after="1"))
    started = time.monotonic()
    assert await client.echo(data={"b": 2}) == {"data": {"b": 2}}
    assert time.monotonic() - started >= 0.95
    assert misbehaving.count("/echo") == 2


async def test_429_http_date_then_ok(client: Any, misbehaving: MisbehavingServer) -> None:
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    misbehaving.script("/echo", error(429, "slow down", retry_after=when))
    assert await client.echo(data={}) == {"data": {}}
    assert misbehaving.count("/echo") == 2


async def test_slow_headers_time_out_without_retry(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/echo", slow_headers(2.0))
    client = await open_client(client_kind, misbehaving.url, retry=FAST, timeout=Timeout(total=0.4))
    try:
        with pytest.raises(exc.ReadTimeout) as info:
            await client.echo(data={})
        assert isinstance(info.value, TimeoutError)
    finally:
        await close_client(client)
    assert misbehaving.count("/echo") == 1


async def test_truncated_body_is_not_retried(client: Any, misbehaving: MisbehavingServer) -> None:
    misbehaving.default("/echo", truncated(b'{"partial": ', declared=100))
    with pytest.raises(exc.ConnectionLost) as info:
        await client.echo(data={})
    assert info.value.before_response is False
    assert misbehaving.count("/echo") == 1


@pytest.mark.parametrize("then", ["close", "reset"])
async def test_stream_dropped_midway_raises_after_its_items(
    client: Any, misbehaving: MisbehavingServer, then: str
) -> None:
    # The drop comes 0.2 s after the last chunk (chunks that come with the drop, in one read:
    # test_differential_bentoml.py, test_a_stream_cut_off_hands_out_what_came_like_bentoml).
    misbehaving.default("/stream", chunks([b"tok0\n", b"tok1\n"], delay=0.2, then=then))
    received = []
    with pytest.raises(exc.ConnectionLost):
        async for item in client.stream(data={}):
            received.append(item)
    assert received == ["tok0\n", "tok1\n"]
    assert misbehaving.count("/stream") == 1  # a stream that yielded is never retried


async def test_stream_error_status_raises_on_first_iteration(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/stream", error(500, "boom"))
    with pytest.raises(exc.InternalServerError):
        async for _ in client.stream(data={}):
            pass
    assert misbehaving.count("/stream") == 1


async def test_split_multibyte_characters_in_a_stream(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    text = "naïve 🙂 日本語\n".encode()
    parts = [text[i : i + 1] for i in range(len(text))]  # one byte per chunk
    misbehaving.default("/stream", chunks(parts))
    received = [item async for item in client.stream(data={})]
    # Each character is yielded with the chunk that completes it; a chunk holding only the
    # start of one yields nothing (an empty item would be no text at all).
    assert received == list("naïve 🙂 日本語\n")


async def test_a_character_split_between_two_chunks(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    first, second = "ab🙂".encode()[:4], "ab🙂".encode()[4:] + b"cd"
    misbehaving.default("/stream", chunks([first, second, "é".encode()], one_write=True))
    assert [item async for item in client.stream(data={})] == ["ab", "🙂cd", "é"]


@pytest.mark.parametrize("endpoint", ["stream", "bytestream"])
async def test_chunks_arriving_in_one_read_stay_separate_items(
    client: Any, misbehaving: MisbehavingServer, endpoint: str
) -> None:
    parts = [f"item {i:02}|".encode() for i in range(25)]
    misbehaving.default(f"/{endpoint}", chunks(parts, one_write=True))
    received = [item async for item in getattr(client, endpoint)(data={})]
    expected = parts if endpoint == "bytestream" else [part.decode() for part in parts]
    assert received == expected


async def test_a_chunk_cut_across_reads_is_one_item(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    body = b"b\r\nfirst item\n\r\n6\r\nsecond\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"
    # Cut inside the first chunk's data, inside the third's size line, and inside its data.
    cuts = [0, 7, 27, 29, 40, len(body)]
    misbehaving.default("/stream", raw_chunked([body[a:b] for a, b in itertools.pairwise(cuts)]))
    received = [item async for item in client.stream(data={})]
    assert received == ["first item\n", "second", "x" * 16]


async def test_a_stream_without_chunked_framing_yields_what_arrives(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/stream", ok(b"tok0\ntok1\ntok2\n", content_type="text/event-stream"))
    received = [item async for item in client.stream(data={})]
    assert received == ["tok0\ntok1\ntok2\n"]  # one read, no boundaries to keep


async def test_binary_stream_yields_bytes(client: Any, misbehaving: MisbehavingServer) -> None:
    parts = [bytes([i]) * 100 for i in range(20)] + [b"\xff\xfe\x00"]
    misbehaving.default("/bytestream", chunks(parts, content_type="application/octet-stream"))
    received = [item async for item in client.bytestream(data={})]
    assert all(isinstance(item, bytes) for item in received)
    assert b"".join(received) == b"".join(parts)


async def test_sse_events(client: Any, misbehaving: MisbehavingServer) -> None:
    body = [
        b": keep-alive comment\n\n",
        b'data: {"token": "Hel"}\n\n',
        b"event: delta\ndata: line one\ndata: line two\n\n",
        b"data: [DONE]\n\n",
        b"data: never seen\n\n",
    ]
    misbehaving.default("/events", chunks(body))
    events = [event async for event in client.events.events(data={})]
    assert [(e.event, e.data) for e in events] == [
        ("message", '{"token": "Hel"}'),
        ("delta", "line one\nline two"),
    ]


async def test_a_stream_that_breaks_off_is_named_by_its_ids(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    ids = {"X-BentoML-Request-ID": "0a1b2c3d4e5f6071"}
    misbehaving.default("/stream", chunks([b"tok0\n", b"\xff\xfe\n"], headers=ids))
    received = []
    with pytest.raises(exc.ResponseDecodeError, match="UTF-8") as info:
        async for item in client.stream(data={}):
            received.append(item)
    assert received == ["tok0\n"]
    assert info.value.request_id == "0a1b2c3d4e5f6071"
    assert "request_id=0a1b2c3d4e5f6071" in str(info.value)


async def test_garbage_json(client: Any, misbehaving: MisbehavingServer) -> None:
    misbehaving.default("/echo", ok(b"<<not json>>"))
    with pytest.raises(exc.ResponseDecodeError) as info:
        await client.echo(data={})
    assert info.value.body == "<<not json>>"
    assert misbehaving.count("/echo") == 1


async def test_html_error_page(client: Any, misbehaving: MisbehavingServer) -> None:
    page = "<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>"
    misbehaving.default("/echo", ok(page, status=504, content_type="text/html"))
    with pytest.raises(exc.GatewayTimeout) as info:
        await client.echo(data={})
    assert info.value.message == "504 Gateway Time-out"
    assert misbehaving.count("/echo") == 3


async def test_huge_body(client: Any, misbehaving: MisbehavingServer) -> None:
    misbehaving.default("/echo", huge(20 * 1024 * 1024))
    value = await client.echo(data={})
    assert isinstance(value, str) and len(value) == 20 * 1024 * 1024
    assert misbehaving.count("/echo") == 1


async def test_server_closing_idle_connections_is_survived(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    async def answer_then_close(request: Any, writer: Any) -> bool:
        await ok()(request, writer)
        return False  # closes without "Connection: close", like an idle timeout

    misbehaving.default("/echo", answer_then_close)
    for i in range(30):
        assert await client.echo(data={"i": i}) == {"data": {"i": i}}
    assert misbehaving.count("/echo") >= 30


async def test_bad_arguments_are_refused_before_anything_is_sent(
    client: Any, misbehaving: MisbehavingServer
) -> None:
    bad_calls = [
        lambda: client.echo(dat={}),  # unknown argument
        lambda: client.echo({}, {}),  # one positional argument too many
        lambda: client.echo({}, data={}),  # the same argument twice
        lambda: client.echo(data={"value": object()}),  # not encodable as JSON
    ]
    for bad_call in bad_calls:
        with pytest.raises(exc.ArgumentError) as raised:
            await bad_call()
        assert isinstance(raised.value, TypeError)  # what BentoML's clients raise
        assert isinstance(raised.value, exc.BentoMLException)
        assert raised.value.error_code == 400
    assert misbehaving.count("/echo") == 0


async def test_retries_are_logged_without_secrets(
    client_kind: str, misbehaving: MisbehavingServer, caplog: pytest.LogCaptureFixture
) -> None:
    misbehaving.script("/echo", error(503, "busy"), reset())
    client = await open_client(client_kind, misbehaving.url, retry=FAST, token="tok-s3cret-42")
    try:
        with caplog.at_level(logging.INFO, logger="asyncbento"):
            assert await client.echo(data={"n": 1}) == {"data": {"n": 1}}
    finally:
        await close_client(client)
    retries = [r.getMessage() for r in caplog.records if r.name == "asyncbento"]
    assert len(retries) == 2, retries
    assert retries[0].startswith(f"POST {misbehaving.url}/echo failed (ServiceUnavailable: busy)")
    assert "attempt 2 of 3" in retries[0] and "ConnectionLost" in retries[1]
    assert "attempt 3 of 3" in retries[1]
    assert not any("s3cret" in text for text in caplog.text.splitlines())
    assert misbehaving.requests[0].headers["authorization"] == "Bearer tok-s3cret-42"


async def test_credentials_in_the_url_become_basic_auth_and_stay_hidden(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    url = misbehaving.url.replace("http://", "http://alice:pa%40ss-s3cret@")
    client = await open_client(client_kind, url, retry=None)
    try:
        assert await client.echo(data={}) == {"data": {}}
        assert "s3cret" not in repr(client.sync if client_kind == "sync" else client)
        misbehaving.script("/echo", reset())
        with pytest.raises(exc.ConnectionLost) as raised:
            await client.echo(data={})
        assert "s3cret" not in str(raised.value) and "s3cret" not in repr(raised.value)
    finally:
        await close_client(client)
    sent = misbehaving.requests[0].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"alice:pa@ss-s3cret").decode()


async def test_connections_closed_while_idle_are_never_reused(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    # The server closes each connection a little after answering, as a keep-alive timeout
    # does. The next call comes later: it must open a new connection rather than send on the
    # closed one, even with retries off (the sync client's loop thread sees the close meanwhile).
    async def answer_then_close_when_idle(request: Any, writer: Any) -> bool:
        await ok()(request, writer)
        await asyncio.sleep(0.05)
        return False

    misbehaving.default("/echo", answer_then_close_when_idle)
    client = await open_client(client_kind, misbehaving.url, retry=None, timeout=5)
    try:
        for i in range(6):
            assert await client.echo(data={"i": i}) == {"data": {"i": i}}
            await asyncio.sleep(0.2)
    finally:
        await close_client(client)
    assert misbehaving.count("/echo") == 6


@pytest.mark.parametrize(
    "header",
    [
        'attachment; filename="../../../../etc/passwd"',
        'attachment; filename="/etc/shadow"',
        "attachment; filename*=UTF-8''..%2F..%2Fescape.txt",
        'attachment; filename="..\\\\..\\\\win.ini"',
        'attachment; filename="a\\x07b.txt"',
        'attachment; filename=".."',
        'attachment; filename=""',
        "inline",
    ],
)
async def test_hostile_file_names_stay_in_the_download_dir(
    client: Any, misbehaving: MisbehavingServer, tmp_path: pathlib.Path, header: str
) -> None:
    misbehaving.default(
        "/download",
        ok(
            b"payload",
            content_type="application/octet-stream",
            headers={"Content-Disposition": header},
        ),
    )
    path = await client.download(data={})
    downloads = (tmp_path / "dl").resolve()
    assert path.resolve().parent == downloads
    assert path.read_bytes() == b"payload"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


TASK_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("old_name", "member", "stored", "raised"),
    [
        ("success", "COMPLETED", ok({"square": 49}), None),
        ("failure", "FAILED", error(500, "task blew up"), exc.InternalServerError),
        (
            "cancelled",
            "CANCELED",
            error(400, f"task {TASK_ID} is not completed yet"),
            exc.TaskFailed,
        ),
    ],
)
async def test_task_status_names_of_servers_before_1_4_14(
    client: Any,
    misbehaving: MisbehavingServer,
    old_name: str,
    member: str,
    stored: Any,
    raised: type[exc.BentoMLException] | None,
) -> None:
    misbehaving.script("/job/submit", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.script("/job/status", ok({"task_id": TASK_ID, "status": "in_progress"}))
    misbehaving.default("/job/status", ok({"task_id": TASK_ID, "status": old_name}))
    misbehaving.default("/job/get", stored)
    task = await client.job.submit(data={"x": 7})
    if raised is None:
        assert await task.wait(timeout=5) == {"square": 49}
    else:
        with pytest.raises(raised):
            await task.wait(timeout=5)
    assert misbehaving.count("/job/status") == 2
    assert misbehaving.count("/job/get") == 1
    status = await task.get_status()
    assert status is ResultStatus[member]
    assert status.finished


async def test_readiness_wait_that_runs_out_is_a_timeout_error(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    misbehaving.ready = False
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        await open_client(client_kind, misbehaving.url, server_ready_timeout=0.5)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, exc.ReadinessTimeout)
    assert isinstance(info.value, exc.ServiceUnavailable)
    assert info.value.error_code == 503
    assert info.value.message == "Server is not ready after 0.5 seconds"
    assert 0.45 <= elapsed < 3.0
    assert misbehaving.requests == []  # nothing but /readyz was asked
