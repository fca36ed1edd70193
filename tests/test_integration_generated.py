"""Integration: typed clients generated from a real `bentoml serve`, against the dynamic ones.

The module is generated with ``asyncbento generate URL`` from the running example service,
then every endpoint is called through the generated async and sync clients and through the
dynamic client of the same kind, with the same arguments; the results (values, their types,
files, images, arrays, streams, tasks, errors) must be the same.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import types
from typing import Any

import numpy as np
import pytest
from _clients import SyncAsAsync, close_client, open_client
from PIL import Image

from asyncbento import AsyncEndpointMethod, cli
from asyncbento._drift import schema_changes
from asyncbento.exceptions import BentoMLException, SchemaMismatch

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def generated(example_url: str, tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    """``asyncbento generate`` run on the live example service, imported."""
    target = tmp_path_factory.mktemp("generated") / "example_client.py"
    assert cli.main(["generate", example_url, "--output", str(target)]) == 0
    spec = importlib.util.spec_from_file_location("example_client", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def open_generated(kind: str, module: types.ModuleType, url: str, **options: Any) -> Any:
    if kind == "async":
        return await module.ExampleServiceAsyncClient(url, **options).__aenter__()
    client = await asyncio.to_thread(module.ExampleServiceSyncClient, url, **options)
    return SyncAsAsync(client)


@pytest.fixture
def inputs(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    audio = tmp_path / "audio sample.txt"
    audio.write_bytes(b"not really audio \x00\x01" * 100)
    other = tmp_path / "part.bin"
    other.write_bytes(bytes(range(256)))
    image = tmp_path / "pic.png"
    Image.new("RGB", (16, 8), (10, 200, 30)).save(image)
    return {"audio": audio, "other": other, "image": image}


def calls(files: dict[str, pathlib.Path]) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """One or more calls of every endpoint of the example service (its test covers them all)."""
    return [
        ("summarize", ("one two three",), {}),
        ("add", (2,), {"b": 3}),
        ("stats", (), {"numbers": [1, 2, 3, 4.5]}),
        ("echo", (), {"data": {"a": [1, {"b": None}], "s": "ünï"}}),
        ("echo_headers", (), {"names": ["user-agent", "x-missing"]}),
        ("echo_list", ([1, "two", None],), {}),
        ("echo_value", (), {}),
        ("echo_value", (), {"value": {"k": [1.5]}}),
        ("make_params", ({"prompt": "cat", "nested": {"label": "x"}},), {"seed": 7}),
        ("flags", (), {"note": "n", "flag": True}),
        ("shout", ("hi",), {}),
        ("sum_root", ([1, 2.5],), {}),
        ("encode", (), {}),
        ("make_bytes", (), {"n": 5, "start": 250}),
        ("file_size", (files["audio"],), {}),
        ("transcribe", (), {"audio_file": files["audio"], "language": "fr"}),
        ("concat_files", ([files["audio"], files["other"]],), {"separator": "|"}),
        ("describe_with_file", (files["other"], {"prompt": "p"}), {}),
        ("invert_image", (), {"image": files["image"]}),
        ("image_info", (files["image"],), {}),
        ("reverse_file", (files["other"],), {}),
        ("make_file", (), {"size": 3000, "name": "x.bin"}),
        ("big_file", (), {}),
        ("stream_sync", (), {"n": 3}),
        ("stream_async", (4,), {"prefix": "t"}),
        ("stream_unicode", (), {"n": 5}),
        ("stream_json", (3,), {}),
        ("stream_fail", (), {"n": 2}),
        ("stream_fail", (), {"fail_before": True}),
        ("slow", (0.05,), {}),
        ("checked_sqrt", (6.25,), {}),
        ("checked_sqrt", (-1,), {}),
        ("fail", (), {"code": 422, "message": "nope"}),
        ("slow_square", (5,), {"delay": 0.05}),
        ("task_image", (), {"size": 4}),
    ]


def comparable(value: Any) -> Any:
    """A value as compared: file contents, image pixels, array data, no per-call trace ids."""
    if isinstance(value, pathlib.Path):
        return ("path", value.read_bytes())
    if isinstance(value, Image.Image):
        return ("image", value.mode, value.size, value.tobytes())
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.tolist())
    if isinstance(value, BaseException):
        code = getattr(value, "error_code", None)
        return ("error", type(value), code, getattr(value, "message", str(value)))
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in PER_CALL}
    return value


# Values that differ from call to call whichever client makes it: trace ids, and the tail of
# the temporary name the server gives an upload.
PER_CALL = {"trace_id", "span_id", "name_suffix", "filename_endswith"}


async def outcome(client: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    endpoint = client.endpoints[name]
    try:
        if endpoint.is_stream:
            return [item async for item in getattr(client, name)(*args, **kwargs)]
        return await getattr(client, name)(*args, **kwargs)
    except BentoMLException as error:
        return error


async def test_every_endpoint_returns_what_the_dynamic_client_returns(
    client_kind: str,
    example_url: str,
    generated: types.ModuleType,
    inputs: dict[str, pathlib.Path],
) -> None:
    typed = await open_generated(client_kind, generated, example_url)
    dynamic = await open_client(client_kind, example_url)
    try:
        table = calls(inputs)
        assert {name for name, _, _ in table} == set(dynamic.endpoints)  # every endpoint
        for name, args, kwargs in table:
            ours = await outcome(typed, name, args, kwargs)
            theirs = await outcome(dynamic, name, args, kwargs)
            assert type(ours) is type(theirs), name
            assert comparable(ours) == comparable(theirs), name
        assert isinstance(await outcome(typed, "checked_sqrt", (-1,), {}), BentoMLException)
    finally:
        await close_client(typed)
        await close_client(dynamic)


async def test_task_methods_return_what_the_dynamic_client_returns(
    client_kind: str, example_url: str, generated: types.ModuleType
) -> None:
    typed = await open_generated(client_kind, generated, example_url)
    dynamic = await open_client(client_kind, example_url)
    try:
        for client in (typed, dynamic):
            task = await client.slow_square.submit(x=6, delay=0.05)
            assert await task.result(timeout=30) == {"x": 6, "square": 36}
            assert (await task.get_status()).value == "completed"
            assert await client.slow_square.get(task.id) == {"x": 6, "square": 36}
            again = await task.retry()
            assert await again.wait(timeout=30) == {"x": 6, "square": 36}
            image = await (await client.task_image.submit(size=3)).result(timeout=30)
            assert image.size == (3, 3)
        assert type(task).__name__ == ("AsyncTask" if client_kind == "async" else "SyncAsAsync")
    finally:
        await close_client(typed)
        await close_client(dynamic)


async def test_generated_attributes_are_the_clients_own_endpoint_methods(
    example_url: str, generated: types.ModuleType
) -> None:
    async with generated.ExampleServiceAsyncClient(example_url) as client:
        assert isinstance(client.add, AsyncEndpointMethod)
        assert client.add is client._methods["add"]  # the registry's method, nothing between
        assert await client.call("add", 1, 2) == await client.add(1, 2) == 3
        view = client.with_options(timeout=5)
        assert type(view) is generated.ExampleServiceAsyncClient
        assert await view.summarize("a b") == "2 words: a b"
    client = generated.ExampleServiceAsyncClient(example_url)  # no `async with`: deferred
    try:
        assert await client.add(4) == 4
    finally:
        await client.close()
    with generated.ExampleServiceSyncClient(example_url) as sync_client:
        view = sync_client.with_options(retry=None)
        assert type(view) is generated.ExampleServiceSyncClient
        assert view.add(1, 1) == 2


def test_stored_schema_matches_the_live_service(generated: types.ModuleType) -> None:
    stored = json.loads((HERE / "schemas" / "example_service.json").read_text())
    assert schema_changes(stored, generated.SCHEMA) == []  # else: tests/schemas/refresh.py


def _drifted(module: types.ModuleType, kind: str) -> type:
    """The generated class of ``kind``, as if made from an older version of the service."""
    schema = json.loads(json.dumps(module.SCHEMA))
    schema["name"] = "renamed_service"
    schema["routes"] = [r for r in schema["routes"] if r["name"] != "stats"]
    add = next(r for r in schema["routes"] if r["name"] == "add")
    add["input"]["properties"]["b"]["type"] = "number"
    drifted_async = type("Drifted", (module.ExampleServiceAsyncClient,), {})
    drifted_async._embedded_schema = schema
    if kind == "async":
        return drifted_async
    return type("DriftedSync", (module.ExampleServiceSyncClient,), {"_async_class": drifted_async})


async def test_embedded_schema_is_used_without_fetching(
    client_kind: str, example_url: str, generated: types.ModuleType
) -> None:
    cls = _drifted(generated, client_kind)
    client = await _open_class(client_kind, cls, example_url)
    try:
        assert client.service_name == "renamed_service"  # the embedded one: nothing fetched
        assert "stats" not in client.endpoints
        assert await client.add(2, 3) == 5
    finally:
        await close_client(client)


async def _open_class(kind: str, cls: type, url: str, **options: Any) -> Any:
    if kind == "async":
        return await cls(url, **options).__aenter__()
    return SyncAsAsync(await asyncio.to_thread(cls, url, **options))


async def test_check_schema_names_what_changed(
    client_kind: str, example_url: str, generated: types.ModuleType
) -> None:
    matching = await open_generated(client_kind, generated, example_url, check_schema=True)
    assert await matching.add(1) == 1
    await close_client(matching)
    with pytest.raises(SchemaMismatch) as caught:
        await _open_class(
            client_kind, _drifted(generated, client_kind), example_url, check_schema=True
        )
    assert caught.value.changes == [
        "service name changed from 'renamed_service' to 'example_service'",
        "endpoint 'stats' was added",
        "endpoint 'add': parameter 'b' changed from "
        '{"default":0,"title":"B","type":"number"} to {"default":0,"title":"B","type":"integer"}',
    ]
    message = str(caught.value)
    assert "no longer matches the schema this client was generated from" in message
    assert "endpoint 'stats' was added" in message and example_url in message


def test_generate_from_a_saved_schema_and_check(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = HERE / "schemas" / "clash_service.json"
    target = tmp_path / "clash_client.py"
    assert cli.main(["generate", str(saved), "--output", str(target), "--class-name", "Clash"]) == 0
    assert "class ClashAsyncClient(AsyncHTTPClient):" in target.read_text()
    assert "wrote" in capsys.readouterr().err
    assert (
        cli.main(
            ["generate", str(saved), "--output", str(target), "--class-name", "Clash", "--check"]
        )
        == 0
    )
    assert cli.main(["generate", str(saved), "--output", str(target), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main(["generate", str(saved), "--output", "-", "--class-name", "Clash"]) == 0
    assert capsys.readouterr().out == target.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["generate", str(bad), "--output", str(target)]) == 2
    assert "is not a JSON /schema.json" in capsys.readouterr().err
