"""Drop-in check: the same calls through BentoML's own clients and through asyncbento's.

Each case is called on the real example service through ``bentoml.SyncHTTPClient`` and
``asyncbento.SyncHTTPClient`` (and the two async clients); outputs must be equal after putting
them in a comparable form (files by name and content, images by pixels, arrays by values,
streams joined), and errors must carry the same ``error_code`` and, where BentoML has a class
for the status, the same class name. BentoML is installed for the server anyway; it is only
imported here, in the tests.
"""

from __future__ import annotations

import asyncio
import gc
import pathlib
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from _clients import close_client, open_client, opened_client
from _misbehaving import MisbehavingServer, chunks, wait_for
from _misbehaving import misbehaving as misbehaving

import asyncbento

with warnings.catch_warnings():  # BentoML's own imports warn about their dependencies
    warnings.simplefilter("ignore", DeprecationWarning)
    bentoml = pytest.importorskip("bentoml")
    BentoSyncClient = bentoml.SyncHTTPClient
    BentoAsyncClient = bentoml.AsyncHTTPClient
np = pytest.importorskip("numpy")
httpx = pytest.importorskip("httpx")  # BentoML's clients raise its transport errors
Image = pytest.importorskip("PIL.Image")

# (endpoint, a function of a scratch folder giving the call's (args, kwargs))
Case = tuple[str, Callable[[pathlib.Path], tuple[tuple[Any, ...], dict[str, Any]]]]


def _args(*args: Any, **kwargs: Any) -> Callable[[pathlib.Path], tuple[tuple[Any, ...], Any]]:
    return lambda _folder: (args, kwargs)


def _a_file(folder: pathlib.Path, name: str = "input data.bin", size: int = 3000) -> pathlib.Path:
    path = folder / name
    path.write_bytes(bytes(i * 7 % 256 for i in range(size)))
    return path


def _png(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "tiny.png"
    Image.new("RGB", (5, 3), (10, 200, 30)).save(path)
    return path


CALLS: list[Case] = [
    ("summarize", _args(text="The quick brown fox jumps over the lazy dog")),
    ("summarize", _args(text="héllo 🙂 日本")),
    ("add", _args(a=2, b=40)),
    ("add", _args(5)),
    ("stats", _args(numbers=[1.5, 2.5, 10.0])),
    ("echo", _args(data={"a": [1, 2, {"b": None}], "c": "ü", "d": 1.25, "e": True})),
    ("echo_list", _args(items=[1, "two", [3], {"four": 4}, None])),
    ("echo_value", _args(value={"k": [1, 2]})),
    ("echo_value", _args(value=[1, 2, 3])),
    ("echo_value", _args(value=7)),
    ("make_params", _args(params={"prompt": "p", "width": 3, "nested": {"label": "x"}}, seed=9)),
    ("flags", _args(flag=True, ratio=0.25, note="n")),
    ("flags", _args()),
    ("shout", _args("quiet words")),
    ("sum_root", _args([1.0, 2.0, 3.5])),
    ("encode", _args(sentences=["abc", "Hello there"])),
    ("make_bytes", _args(n=300, start=250)),
    ("file_size", lambda folder: ((_a_file(folder),), {})),
    ("transcribe", lambda folder: ((), {"audio_file": _a_file(folder)})),
    (
        "concat_files",
        lambda folder: (
            (),
            {
                "files": [_a_file(folder, "one.bin", 10), _a_file(folder, "two.bin", 20)],
                "separator": "|",
            },
        ),
    ),
    (
        "describe_with_file",
        lambda folder: ((), {"document": _a_file(folder), "params": {"prompt": "doc"}}),
    ),
    ("image_info", lambda folder: ((), {"image": _png(folder)})),
    ("invert_image", lambda folder: ((), {"image": _png(folder)})),
    ("reverse_file", lambda folder: ((), {"f": _a_file(folder, "data.bin")})),
    ("make_file", _args(size=5000, name="made.bin")),
    ("stream_sync", _args(n=4, prefix="p")),
    ("stream_async", _args(n=6)),
    ("stream_unicode", _args(n=20)),
]

# BentoML 1.4.40's AsyncHTTPClient cannot upload files ("Attempted to send an sync request
# with an AsyncClient instance"), so the async comparison uses the cases without files.
_FILE_ENDPOINTS = {
    "file_size",
    "transcribe",
    "concat_files",
    "describe_with_file",
    "image_info",
    "invert_image",
    "reverse_file",
}
FILE_FREE_CALLS = [case for case in CALLS if case[0] not in _FILE_ENDPOINTS]

ERRORS: list[Case] = [
    ("checked_sqrt", _args(x=-4.0)),
    ("fail", _args(code=400, message="bad")),
    ("fail", _args(code=404, message="missing")),
    ("fail", _args(code=422, message="unprocessable")),
    ("fail", _args(code=500, message="boom")),
    ("fail", _args(code=503, message="later")),
    ("fail", _args(code=409, message="conflict")),
    ("stats", _args(numbers="not a list")),
]


# The server saves uploads, and BentoML's client saves downloads, under random temporary names
# ("tmpk3j_x9a2" + the original name); the random part is not the service's output.
_RANDOM_TEMP = re.compile(r"tmp[a-z0-9_]{8}")


def comparable(value: Any) -> Any:
    """An output in a form that compares equal across the two clients."""
    if isinstance(value, str):
        return _RANDOM_TEMP.sub("", value)
    if isinstance(value, pathlib.Path):
        return ("file", _RANDOM_TEMP.sub("", value.name), value.read_bytes())
    if isinstance(value, Image.Image):
        return ("image", value.size, value.mode, value.tobytes())
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.tolist())
    if isinstance(value, (list, tuple)):
        return [comparable(item) for item in value]
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    return value


def _joined(chunks: list[Any]) -> Any:
    if chunks and all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunks)
    if chunks and all(isinstance(chunk, bytes) for chunk in chunks):
        return b"".join(chunks)
    return chunks


def _failure(error: Exception) -> tuple[str, int]:
    """An error as compared across the two libraries: its class name and status code."""
    return type(error).__name__, int(getattr(error, "error_code", 0))


def sync_outcome(client: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What a sync client gives for one call: ("ok", output) or ("error", class, code)."""
    try:
        result = getattr(client, name)(*args, **kwargs)
        if not isinstance(result, (str, bytes, dict, list)) and hasattr(result, "__next__"):
            result = _joined(list(result))
        return ("ok", comparable(result))
    except Exception as error:  # both libraries' errors are compared as data
        return ("error", *_failure(error))


async def async_outcome(
    client: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        result = getattr(client, name)(*args, **kwargs)
        if hasattr(result, "__anext__"):
            result = _joined([chunk async for chunk in result])
        else:
            result = await result
        return ("ok", comparable(result))
    except Exception as error:
        return ("error", *_failure(error))


def same_error(theirs: Any, ours: Any) -> bool:
    """Same status; and the same class name unless BentoML has no class for the status."""
    if theirs[0] != "error" or ours[0] != "error" or theirs[2] != ours[2]:
        return False
    return theirs[1] == ours[1] or theirs[1] == "BentoMLException"


def _ids(cases: list[Case]) -> list[str]:
    return [f"{name}-{i}" for i, (name, _) in enumerate(cases)]


def _drop_downloads(their_client: Any) -> None:
    # BentoML's clients keep downloads in a TemporaryDirectory that they never clean up,
    # which warns (ResourceWarning) when it is collected.
    their_client._temp_dir.cleanup()


@pytest.fixture(scope="module")
def their_sync(example_url: str) -> Any:
    with BentoSyncClient(example_url) as client:
        yield client
    _drop_downloads(client)


@pytest.fixture(scope="module")
def our_sync(example_url: str) -> Any:
    with asyncbento.SyncHTTPClient(example_url) as client:
        yield client


@pytest.mark.parametrize(("name", "make"), CALLS, ids=_ids(CALLS))
def test_sync_outputs_match_bentoml(
    their_sync: Any, our_sync: Any, name: str, make: Any, tmp_path: pathlib.Path
) -> None:
    args, kwargs = make(tmp_path)
    theirs = sync_outcome(their_sync, name, args, kwargs)
    ours = sync_outcome(our_sync, name, args, kwargs)
    assert theirs[0] == "ok", theirs
    assert ours == theirs


@pytest.mark.parametrize(("name", "make"), ERRORS, ids=_ids(ERRORS))
def test_sync_errors_match_bentoml(
    their_sync: Any, our_sync: Any, name: str, make: Any, tmp_path: pathlib.Path
) -> None:
    args, kwargs = make(tmp_path)
    theirs = sync_outcome(their_sync, name, args, kwargs)
    ours = sync_outcome(our_sync, name, args, kwargs)
    assert same_error(theirs, ours), (theirs, ours)


async def test_async_outputs_and_errors_match_bentoml(
    example_url: str, tmp_path: pathlib.Path
) -> None:
    async with (
        BentoAsyncClient(example_url) as theirs_client,
        asyncbento.AsyncHTTPClient(example_url) as our_client,
    ):
        for index, (name, make) in enumerate(FILE_FREE_CALLS):
            folder = tmp_path / f"call{index}"
            folder.mkdir()
            args, kwargs = make(folder)
            theirs = await async_outcome(theirs_client, name, args, kwargs)
            ours = await async_outcome(our_client, name, args, kwargs)
            assert theirs[0] == "ok", (name, theirs)
            assert ours == theirs, name
        for name, make in ERRORS:
            args, kwargs = make(tmp_path)
            theirs = await async_outcome(theirs_client, name, args, kwargs)
            ours = await async_outcome(our_client, name, args, kwargs)
            assert same_error(theirs, ours), (name, theirs, ours)
    _drop_downloads(theirs_client)


async def _finished(task: Any) -> Any:
    for _ in range(300):
        status = await task.get_status()
        if status.name != "IN_PROGRESS":
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"{task} did not finish")


async def _task_outcome(task: Any) -> Any:
    status = await _finished(task)
    try:
        return (status.name, comparable(await task.get()))
    except Exception as error:
        return (status.name, *_failure(error))


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("slow_square", {"x": 12, "delay": 0.05}),
        ("slow_square", {"x": -1, "delay": 0.0}),
        ("task_image", {"size": 6}),
    ],
)
async def test_tasks_match_bentoml(example_url: str, name: str, arguments: dict[str, Any]) -> None:
    # BentoML 1.4.40's SyncHTTPClient cannot submit tasks (AttributeError: '_opened_files'),
    # so both of our clients are compared with its AsyncHTTPClient.
    async with (
        BentoAsyncClient(example_url) as theirs_client,
        asyncbento.AsyncHTTPClient(example_url) as our_client,
    ):
        theirs = await _task_outcome(await getattr(theirs_client, name).submit(**arguments))
        ours = await _task_outcome(await getattr(our_client, name).submit(**arguments))
    _drop_downloads(theirs_client)
    our_sync = await open_client("sync", example_url)
    try:
        ours_sync = await _task_outcome(await getattr(our_sync, name).submit(**arguments))
    finally:
        await close_client(our_sync)
    assert theirs == ours == ours_sync


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/readyz", {}),
    ("GET", "/livez", {}),
    ("POST", "/v1/math/add", {"json": {"a": 2, "b": 40}}),
    ("POST", "/summarize", {"json": {"text": "héllo 🙂 日本"}}),
    ("POST", "/shout", {"content": "quiet", "headers": {"Content-Type": "text/plain"}}),
    ("POST", "/checked_sqrt", {"json": {"x": -4}}),
    ("GET", "/no/such/route", {}),
    ("GET", "/v1/math/add", {}),
]


def _answer(response: Any) -> tuple[Any, ...]:
    """What code written for BentoML's clients reads from a response."""
    return (
        response.status_code,
        response.is_success,
        response.is_error,
        response.content,
        response.text,
        response.headers["content-type"],
    )


async def test_request_matches_bentoml(example_url: str) -> None:
    with BentoSyncClient(example_url) as their_sync:
        theirs = [_answer(their_sync.request(m, u, **o)) for m, u, o in REQUESTS]
    _drop_downloads(their_sync)
    async with BentoAsyncClient(example_url) as their_async:
        theirs_async = [_answer(await their_async.request(m, u, **o)) for m, u, o in REQUESTS]
    _drop_downloads(their_async)
    assert theirs == theirs_async
    assert [answer[0] for answer in theirs] == [200, 200, 200, 200, 200, 400, 404, 405]
    for kind in ("async", "sync"):
        ours = await open_client(kind, example_url)
        try:
            answers = [_answer(await ours.request(m, u, **o)) for m, u, o in REQUESTS]
        finally:
            await close_client(ours)
        assert answers == theirs, kind


# Streams item by item (not joined): the consumer sleeps after the first item, so that the
# server has written the rest by the time it reads on, and many chunks arrive in one read.
STREAMS: list[tuple[str, dict[str, Any]]] = [
    ("stream_async", {"n": 40}),
    ("stream_sync", {"n": 40}),
    ("stream_json", {"n": 12}),
    ("stream_unicode", {"n": 20}),
]
_LATE = 0.3


def _late_items(stream: Any) -> list[Any]:
    items: list[Any] = []
    for item in stream:
        if not items:
            time.sleep(_LATE)
        items.append(item)
    return items


async def _late_items_async(stream: Any) -> list[Any]:
    items: list[Any] = []
    async for item in stream:
        if not items:
            await asyncio.sleep(_LATE)
        items.append(item)
    return items


@pytest.mark.parametrize(("name", "arguments"), STREAMS, ids=[name for name, _ in STREAMS])
def test_sync_stream_items_match_bentoml(
    their_sync: Any, our_sync: Any, name: str, arguments: dict[str, Any]
) -> None:
    theirs = _late_items(getattr(their_sync, name)(**arguments))
    assert len(theirs) == arguments["n"]  # BentoML's client: one item per server-side yield
    assert _late_items(getattr(our_sync, name)(**arguments)) == theirs


async def test_async_stream_items_match_bentoml(example_url: str) -> None:
    async with (
        BentoAsyncClient(example_url) as theirs_client,
        asyncbento.AsyncHTTPClient(example_url) as our_client,
    ):
        for name, arguments in STREAMS:
            theirs = await _late_items_async(getattr(theirs_client, name)(**arguments))
            assert len(theirs) == arguments["n"], name
            assert await _late_items_async(getattr(our_client, name)(**arguments)) == theirs
    _drop_downloads(theirs_client)


async def test_chunks_in_one_write_match_bentoml() -> None:
    parts = [f"item {i:02}|".encode() for i in range(25)]
    with MisbehavingServer() as server:
        server.default("/stream", chunks(parts, one_write=True))
        with BentoSyncClient(server.url) as their_sync:
            theirs = list(their_sync.stream(data={}))
        _drop_downloads(their_sync)
        async with BentoAsyncClient(server.url) as their_async:
            theirs_async = [item async for item in their_async.stream(data={})]
        _drop_downloads(their_async)
        assert theirs == theirs_async == [part.decode() for part in parts]
        for kind in ("async", "sync"):
            async with opened_client(kind, server.url) as ours:
                assert [item async for item in ours.stream(data={})] == theirs, kind


@pytest.mark.parametrize("then", ["close", "reset"])
async def test_a_stream_cut_off_hands_out_what_came_like_bentoml(then: str) -> None:
    """Chunks, a chunk's first half and the drop in one network read: BentoML's sync client
    yields every chunk, then the half, then raises; so does asyncbento, with ConnectionLost
    (aiohttp, which raises the failure before what it has buffered, used to lose them)."""
    parts = [f"tok{i}\n".encode() for i in range(5)]
    with MisbehavingServer() as server:
        server.default("/stream", chunks(parts, one_write=True, then=then, cut_short=b"part"))
        theirs: list[str] = []
        with BentoSyncClient(server.url) as their_sync:
            with pytest.raises(httpx.HTTPError):
                for item in their_sync.stream(data={}):
                    theirs.append(item)
        _drop_downloads(their_sync)
        assert theirs == [part.decode() for part in parts] + ["part"]
        for kind in ("async", "sync"):
            async with opened_client(kind, server.url) as ours:
                for _ in range(3):  # every time, not when the read happened to come first
                    received = []
                    with pytest.raises(asyncbento.exceptions.ConnectionLost):
                        async for item in ours.stream(data={}):
                            received.append(item)
                    assert received == theirs, kind


@pytest.mark.parametrize("leave", ["close", "drop"])
@pytest.mark.parametrize(
    "make", [BentoSyncClient, asyncbento.SyncHTTPClient], ids=["bentoml", "asyncbento"]
)
def test_a_sync_stream_left_early_is_closed_on_the_server_at_once(
    misbehaving: MisbehavingServer, make: Any, leave: str
) -> None:
    """Closed with ``close()`` or dropped and collected: the server sees the connection closed
    within 1 s, five times in a row (asyncbento's loop closes it while the caller goes on)."""
    parts = [f"data: {i}\n\n".encode() for i in range(200)]
    misbehaving.default("/stream", chunks(parts, delay=0.05))
    with make(misbehaving.url) as client:
        for _ in range(5):
            stream = client.stream(data={})
            assert next(stream) == "data: 0\n\n"
            assert misbehaving.open_connections() == 1
            if leave == "close":
                stream.close()
            else:
                del stream
                gc.collect()
            wait_for(lambda: misbehaving.open_connections() == 0, 1.0)
    if make is BentoSyncClient:
        _drop_downloads(client)
    assert misbehaving.count("/stream") == 5


def _sent_trace(answer: dict[str, Any]) -> tuple[list[str], str]:
    return answer["headers"]["traceparent"], answer["trace_id"]


def test_trace_context_matches_bentoml(their_sync: Any, our_sync: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("tests")
    names = ["traceparent"]
    with tracer.start_as_current_span("caller") as span:
        theirs = _sent_trace(their_sync.echo_headers(names=names))
        ours = _sent_trace(our_sync.echo_headers(names=names))
    context = span.get_span_context()
    expected = (
        [f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"],
        f"{context.trace_id:032x}",
    )
    assert theirs == ours == expected
    # Without an active span neither sends one, and the server starts a trace of its own.
    theirs_alone = their_sync.echo_headers(names=names)["headers"]
    ours_alone = our_sync.echo_headers(names=names)["headers"]
    assert theirs_alone == ours_alone == {"traceparent": []}


async def test_async_trace_context_matches_bentoml(example_url: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("tests")
    async with (
        BentoAsyncClient(example_url) as theirs,
        asyncbento.AsyncHTTPClient(example_url) as ours,
    ):
        with tracer.start_as_current_span("caller") as span:
            their_answer = await theirs.echo_headers(names=["traceparent"])
            our_answer = await ours.echo_headers(names=["traceparent"])
    _drop_downloads(theirs)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert _sent_trace(their_answer)[1] == _sent_trace(our_answer)[1] == trace_id
    assert _sent_trace(their_answer)[0] == _sent_trace(our_answer)[0]


async def test_an_unknown_endpoint_name_matches_bentoml(
    their_sync: Any, our_sync: Any, example_url: str
) -> None:
    # BentoML raises its NotFound (404) from call(); ours is EndpointNotFound, a NotFound with
    # the same status (and also an AttributeError). Both raise AttributeError for client.<name>.
    assert sync_outcome(their_sync, "call", ("nope",), {}) == ("error", "NotFound", 404)
    assert sync_outcome(our_sync, "call", ("nope",), {}) == ("error", "EndpointNotFound", 404)
    for client in (their_sync, our_sync):
        with pytest.raises(AttributeError):
            client.nope  # noqa: B018
    async with (
        BentoAsyncClient(example_url) as theirs_client,
        asyncbento.AsyncHTTPClient(example_url) as our_client,
    ):
        theirs = await async_outcome(theirs_client, "call", ("nope",), {})
        ours = await async_outcome(our_client, "call", ("nope",), {})
    assert (theirs, ours) == (("error", "NotFound", 404), ("error", "EndpointNotFound", 404))
    _drop_downloads(theirs_client)
