"""Integration: files in and out against a real `bentoml serve`, through both clients."""

from __future__ import annotations

import asyncio
import hashlib
import io
import pathlib
from typing import Any

import pytest
from _clients import close_client, open_client
from PIL import Image, ImageOps

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_unicode_file_name_reaches_the_service(client: Any, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "résumé 日本.txt"
    path.write_bytes(b"data")
    result = await client.transcribe(audio_file=path)
    assert result["filename_endswith"].endswith("résumé 日本.txt")


@pytest.fixture
def payload(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "audio sample.txt"
    path.write_bytes(bytes(range(256)) * 40 + "ünïcode".encode())
    return path


def file_inputs(path: pathlib.Path) -> dict[str, Any]:
    return {
        "path": path,
        "str": str(path),
        "file_url": path.as_uri(),
        "bytes": path.read_bytes(),
        "bytesio": io.BytesIO(path.read_bytes()),
    }


@pytest.mark.parametrize("kind", ["path", "str", "file_url", "bytes", "bytesio", "open_file"])
async def test_file_field_kinds(client: Any, payload: pathlib.Path, kind: str) -> None:
    data = payload.read_bytes()
    value = open(payload, "rb") if kind == "open_file" else file_inputs(payload)[kind]  # noqa: SIM115
    try:
        result = await client.transcribe(audio_file=value, language="fr", word_timestamps=False)
    finally:
        if kind == "open_file":
            value.close()
    assert result["size"] == len(data)
    assert result["sha256"] == sha(data)
    assert result["language"] == "fr"
    assert result["word_timestamps"] is False
    if kind in ("path", "str", "file_url", "open_file"):
        assert result["filename_endswith"].endswith("audio sample.txt")


async def test_file_object_is_read_from_its_position(client: Any, payload: pathlib.Path) -> None:
    with open(payload, "rb") as handle:
        handle.seek(100)
        result = await client.transcribe(audio_file=handle)
    assert result["sha256"] == sha(payload.read_bytes()[100:])


async def test_url_input_is_fetched_by_the_server(client: Any, file_proxy: Any) -> None:
    data = b"remote bytes " * 100
    file_proxy.add("remote.bin", data, "application/octet-stream")
    result = await client.transcribe(audio_file="http://files.asyncbento.test/remote.bin")
    assert result["sha256"] == sha(data)
    root = await client.file_size("http://files.asyncbento.test/remote.bin")
    assert root["sha256"] == sha(data)


async def test_list_of_files(client: Any, tmp_path: pathlib.Path) -> None:
    parts = []
    for i in range(3):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(bytes([i]) * (1000 + i))
        parts.append(path)
    result = await client.concat_files(
        files=[parts[0], str(parts[1]), parts[2].read_bytes()], separator="--"
    )
    assert result["count"] == 3
    assert result["sizes"] == [1000, 1001, 1002]
    assert result["sha256"] == sha(b"--".join(p.read_bytes() for p in parts))


async def test_pydantic_value_beside_a_file(client: Any, payload: pathlib.Path) -> None:
    import pydantic

    class Params(pydantic.BaseModel):
        prompt: str
        width: int = 1
        height: int = 1

    result = await client.describe_with_file(document=payload, params=Params(prompt="p", width=3))
    assert result["size"] == payload.stat().st_size
    assert result["params"]["prompt"] == "p" and result["params"]["width"] == 3


async def test_root_file_input(client: Any, payload: pathlib.Path) -> None:
    data = payload.read_bytes()
    for value in (payload, str(payload), data, io.BytesIO(data)):
        result = await client.file_size(value)
        assert result["size"] == len(data)
        assert result["sha256"] == sha(data)


def image_variant(tmp_path: pathlib.Path, variant: str) -> Any:
    """One image in the given state; files opened here are closed by PIL after load()."""
    base = Image.new("RGB", (16, 8), (10, 200, 30))
    png = tmp_path / "pic.png"
    base.save(png)
    jpg = tmp_path / "pic.jpg"
    base.save(jpg)
    if variant == "fresh_png":
        return Image.open(png)
    if variant == "fresh_jpeg":
        return Image.open(jpg)
    if variant == "loaded":
        loaded = Image.open(png)
        loaded.load()
        return loaded
    if variant == "converted":
        with Image.open(png) as opened:
            return opened.convert("L")
    if variant == "rgba":
        return Image.new("RGBA", (16, 8), (1, 2, 3, 4))
    return base


@pytest.mark.parametrize(
    "variant", ["fresh_png", "loaded", "fresh_jpeg", "in_memory", "converted", "rgba"]
)
async def test_pil_inputs_in_every_state(client: Any, tmp_path: pathlib.Path, variant: str) -> None:
    image = image_variant(tmp_path, variant)
    try:
        info = await client.image_info(image=image)
    finally:
        image.close()
    assert info["size"] == [16, 8]
    assert info["mode"] == image.mode
    assert info["format"] == (image.format or "PNG")


async def test_image_in_image_out(client: Any) -> None:
    image = Image.new("RGB", (4, 4), (10, 20, 30))
    inverted = await client.invert_image(image=image)
    assert isinstance(inverted, Image.Image)
    assert inverted.size == (4, 4)
    assert inverted.getpixel((0, 0)) == ImageOps.invert(image).getpixel((0, 0))


async def test_file_output_is_a_path_in_download_dir(
    client_kind: str, example_url: str, payload: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    downloads = tmp_path / "downloads"
    client = await open_client(client_kind, example_url, download_dir=downloads)
    try:
        result = await client.reverse_file(f=payload)
        assert isinstance(result, pathlib.Path)
        assert result.parent == downloads.resolve()
        assert result.read_bytes() == payload.read_bytes()[::-1]
        assert result.name.endswith("audio sample.txt")
        made = await client.make_file(size=5000, name="data.bin")
        assert made.read_bytes() == bytes(i % 251 for i in range(5000))
        again = await client.make_file(size=10, name="data.bin")
        assert again != made and again.name.endswith("data.bin")
    finally:
        await close_client(client)
    assert result.exists() and made.exists()  # closing never deletes the user's files


async def test_large_download_streams_to_disk(client: Any) -> None:
    path = await client.big_file(size_mb=8)
    assert path.stat().st_size == 8 * 1024 * 1024
    with open(path, "rb") as handle:
        assert handle.read(251) == bytes(range(251))


async def test_missing_file_fails_before_sending(client: Any, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError) as info:
        await client.transcribe(audio_file=missing)
    assert "audio_file" in str(info.value)
    assert isinstance(info.value, exc.InputFileNotFound) and info.value.error_code == 400
    assert (info.value.errno, info.value.filename) == (2, str(missing))
    with pytest.raises(exc.InputFileNotFound):
        await client.file_size(missing)


@pytest.mark.parametrize("value", [123, 4.5, {"a": 1}, object()])
async def test_wrong_type_for_file_field(client: Any, value: Any) -> None:
    with pytest.raises(TypeError) as info:
        await client.transcribe(audio_file=value)
    assert isinstance(info.value, exc.ArgumentError)
    assert "audio_file" in str(info.value)
    assert "pathlib.Path" in str(info.value)


async def test_text_mode_file_object_is_refused(client: Any, payload: pathlib.Path) -> None:
    with open(payload, encoding="latin-1") as handle, pytest.raises(TypeError, match="binary"):
        await client.transcribe(audio_file=handle)


async def test_200_concurrent_uploads_on_one_async_client(
    example_url: str, tmp_path: pathlib.Path
) -> None:
    paths = []
    for i in range(200):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(i.to_bytes(2, "big") * (500 + i))
        paths.append(path)
    async with AsyncHTTPClient(example_url) as client:
        results = await asyncio.gather(*(client.transcribe(audio_file=p) for p in paths))
        downloads = await asyncio.gather(*(client.reverse_file(f=p) for p in paths[:100]))
    for path, result in zip(paths, results, strict=True):
        assert result["sha256"] == sha(path.read_bytes())
    for path, out in zip(paths[:100], downloads, strict=True):
        assert out.read_bytes() == path.read_bytes()[::-1]
    assert len({d for d in downloads}) == 100


def test_concurrent_uploads_from_threads_on_one_sync_client(
    example_url: str, tmp_path: pathlib.Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for i in range(60):
        path = tmp_path / f"t{i}.bin"
        path.write_bytes(bytes([i % 256]) * (1000 + i))
        paths.append(path)

    def upload(path: pathlib.Path) -> Any:
        with open(path, "rb") as handle:
            return client.transcribe(audio_file=handle)

    with SyncHTTPClient(example_url) as client, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(upload, paths))
    for path, result in zip(paths, results, strict=True):
        assert result["sha256"] == sha(path.read_bytes())
