"""Files in and out: every kind of file input, streamed in chunks; safe downloads.

Inputs are turned into :class:`FileSource` objects first (checks and metadata, before any
request is sent); each attempt then opens fresh streams from them, so a retried request sends
the file again from its start. Nothing here reads a whole file into memory.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import pathlib
import secrets
import stat
import unicodedata
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import aiohttp
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from ._codec import where
from ._streaming import read_chunk
from .exceptions import ArgumentError, ArgumentValueError, InputFileNotFound, ResponseTooLarge

CHUNK_SIZE = 256 * 1024

ACCEPTED_FILE_TYPES = (
    "pathlib.Path, a str path, a file:// or http(s):// URL, bytes, "
    "a binary file object, or a PIL image"
)


class FileSource:
    """One file to upload: its name, type, and a way to stream it from the start."""

    __slots__ = ("content_type", "filename", "open_stream", "rewindable")

    def __init__(
        self,
        filename: str,
        content_type: str | None,
        open_stream: Callable[[], AsyncIterator[bytes]],
        rewindable: bool = True,
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.open_stream = open_stream
        self.rewindable = rewindable


class RemoteFile:
    """A URL for the server to download itself (``http(s)://``), sent as text."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url


FileInput = FileSource | RemoteFile


def _guess_type(filename: str) -> str | None:
    return mimetypes.guess_type(filename)[0]


def _is_pil_image(value: object) -> bool:
    module = type(value).__module__
    return module.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "mode")


async def _path_source(path: pathlib.Path, endpoint: str, argument: str | None) -> FileSource:
    import aiofiles.os  # imported on first use: most calls carry no files

    label = where(endpoint, argument)
    shown = _shown(path)
    try:
        info = await aiofiles.os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputFileNotFound(f"{label}: no such file: {shown}", str(path)) from None
    except (OSError, ValueError) as exc:  # a NUL in the path, a name too long, no permission
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ArgumentValueError(f"{label}: cannot use the path {shown}: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputFileNotFound(f"{label}: not a regular file: {shown}", str(path))

    async def stream() -> AsyncIterator[bytes]:
        import aiofiles

        try:
            async with aiofiles.open(path, "rb") as handle:
                while chunk := await handle.read(CHUNK_SIZE):
                    yield chunk
        except OSError as exc:
            raise _read_failed(label, exc) from exc

    return FileSource(path.name, _guess_type(path.name), stream)


def _bytes_source(data: bytes, filename: str, content_type: str | None) -> FileSource:
    view = memoryview(data)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])

    return FileSource(filename, content_type, stream)


def _file_object_source(handle: Any, endpoint: str, argument: str | None) -> FileSource:
    label = where(endpoint, argument)
    mode = getattr(handle, "mode", "b")  # gzip.GzipFile has a number here
    if isinstance(handle, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
        raise ArgumentError(f"{label}: open the file in binary mode ('rb')")
    if getattr(handle, "closed", False) is True:
        raise ArgumentValueError(f"{label}: the file object is closed")
    raw_name = getattr(handle, "name", None)
    filename = os.path.basename(raw_name) if isinstance(raw_name, str) else ""
    filename = filename or f"{argument or 'file'}.bin"
    try:
        seekable = bool(getattr(handle, "seekable", lambda: False)())
        start = handle.tell() if seekable else 0
    except (OSError, ValueError):  # claims to seek but cannot tell: send it once, from here
        seekable, start = False, 0
    in_memory = isinstance(handle, io.BytesIO)

    async def stream() -> AsyncIterator[bytes]:
        try:
            if seekable:
                handle.seek(start) if in_memory else await asyncio.to_thread(handle.seek, start)
            while chunk := (
                handle.read(CHUNK_SIZE)
                if in_memory
                else await asyncio.to_thread(handle.read, CHUNK_SIZE)
            ):
                yield bytes(chunk)
        except (OSError, ValueError, TypeError, EOFError) as exc:  # EOFError: a cut gzip file
            raise _read_failed(label, exc) from exc

    return FileSource(filename, _guess_type(filename), stream, rewindable=seekable)


def _shown(path: pathlib.Path) -> str:
    text = str(path)
    return repr(text if len(text) <= 200 else text[:200] + "...")


def _read_failed(label: str, exc: BaseException) -> ArgumentValueError:
    # Raised inside aiohttp's body writer, which makes it the cause of a connection error;
    # translate_error gives it back, so the caller sees this and not a lost connection.
    return ArgumentValueError(f"{label}: reading the file failed: {type(exc).__name__}: {exc}")


def _encode_image(image: Any) -> tuple[bytes, str]:
    """Encode a PIL image in its own format (PNG when it has none); runs in a thread."""
    image_format = (getattr(image, "format", None) or "PNG").upper()
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format)
    except (OSError, ValueError, KeyError):
        # e.g. an RGBA image whose recorded format is JPEG: fall back to lossless PNG.
        image_format = "PNG"
        buffer = io.BytesIO()
        image.save(buffer, format=image_format)
    return buffer.getvalue(), image_format


async def _image_source(image: Any) -> FileSource:
    data, image_format = await asyncio.to_thread(_encode_image, image)
    extension = "jpg" if image_format == "JPEG" else image_format.lower()
    original = getattr(image, "filename", None)
    stem = pathlib.Path(original).stem if isinstance(original, str) and original else "image"
    filename = f"{stem}.{extension}"
    return _bytes_source(data, filename, _guess_type(filename) or f"image/{extension}")


async def prepare_file(value: Any, *, endpoint: str, argument: str | None) -> FileInput:
    """Check one file input and describe how to send it.

    Raises:
        InputFileNotFound: a path (or file:// URL) that does not exist, naming the argument
            (a FileNotFoundError).
        ArgumentError: a value that is not a file of any accepted kind (a TypeError).
    """
    if isinstance(value, str):
        lowered = value[:8].lower()
        if lowered.startswith(("http://", "https://")):
            return RemoteFile(value)
        if lowered.startswith("file://"):
            parts = urlsplit(value)
            if parts.netloc not in ("", "localhost"):
                raise ArgumentValueError(
                    f"{where(endpoint, argument)}: remote file:// URL {value!r}"
                )
            return await _path_source(
                pathlib.Path(url2pathname(unquote(parts.path))), endpoint, argument
            )
        return await _path_source(pathlib.Path(value), endpoint, argument)
    if isinstance(value, os.PathLike):
        return await _path_source(pathlib.Path(os.fspath(value)), endpoint, argument)
    if isinstance(value, (bytes, bytearray, memoryview)):
        name = f"{argument or 'file'}.bin"
        return _bytes_source(bytes(value), name, "application/octet-stream")
    if _is_pil_image(value):
        return await _image_source(value)
    if hasattr(value, "read"):
        return _file_object_source(value, endpoint, argument)
    raise ArgumentError(
        f"{where(endpoint, argument)} must be a file: {ACCEPTED_FILE_TYPES}; "
        f"got {type(value).__qualname__}"
    )


async def prepare_files(value: Any, *, endpoint: str, argument: str) -> list[FileInput]:
    """The inputs for a list-of-files field (a single file is accepted as a list of one)."""
    if isinstance(value, (list, tuple)):
        return [await prepare_file(item, endpoint=endpoint, argument=argument) for item in value]
    return [await prepare_file(value, endpoint=endpoint, argument=argument)]


def file_payload(source: FileSource) -> aiohttp.payload.Payload:
    """A fresh streaming payload for one attempt."""
    return aiohttp.payload.AsyncIterablePayload(
        source.open_stream(), content_type=source.content_type or "application/octet-stream"
    )


# ----------------------------------------------------------------------------- downloads


def safe_filename(raw: str | None, fallback: str = "download") -> str:
    """Reduce a server-chosen file name to a plain base name that cannot leave a directory."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*'
    ).strip(" .")
    if not name or name in (".", ".."):
        name = fallback
    encoded = name.encode("utf-8")
    if len(encoded) > 200:
        suffix = pathlib.PurePath(name).suffix[:20]
        stem = encoded[: 200 - len(suffix.encode("utf-8"))].decode("utf-8", "ignore")
        name = stem + suffix
    return name


def response_filename(response: aiohttp.ClientResponse) -> str:
    """The safe base name for a file answer, from Content-Disposition or the URL."""
    header = response.headers.get("Content-Disposition")
    raw = None
    if header:
        _, params = parse_content_disposition(header)
        raw = content_disposition_filename(params)
    if not raw:
        raw = unquote(response.url.path.rsplit("/", 1)[-1])
        extension = mimetypes.guess_extension(response.content_type or "") or ""
        if extension and not raw.endswith(extension):
            raw += extension
    return safe_filename(raw)


async def save_download(
    response: aiohttp.ClientResponse, directory: pathlib.Path, limit: int | None = None
) -> pathlib.Path:
    """Stream a file answer to a new file in ``directory`` and return its path.

    The name is the server's (made safe); if taken, a random prefix keeps it unique, so the
    returned name always ends with the server's name, as with BentoML's client.

    Raises:
        ResponseTooLarge: the file is larger than ``limit`` bytes; nothing is left on disk.
    """
    import aiofiles
    import aiofiles.os

    await aiofiles.os.makedirs(directory, exist_ok=True)
    root = pathlib.Path(await aiofiles.os.path.abspath(directory))
    name = response_filename(response)
    candidate = name
    while True:
        path = root / candidate
        if path.parent != root:  # unreachable after safe_filename; a last line of defence
            raise ValueError(f"refusing to write outside the download directory: {candidate!r}")
        try:
            handle = await aiofiles.open(path, "xb")
        except FileExistsError:
            candidate = f"{secrets.token_hex(4)}-{name}"
            continue
        break
    try:
        try:
            written = 0
            while chunk := await read_chunk(response):
                written += len(chunk)
                if limit is not None and written > limit:
                    raise ResponseTooLarge(
                        f"the file answer from {response.url.path} is larger than {limit} "
                        "bytes (Limits.max_file_size)"
                    )
                await handle.write(chunk)
        finally:
            await handle.close()
    except BaseException:
        await aiofiles.os.remove(path)
        raise
    return path


def _load_image(path: pathlib.Path) -> Any:
    from PIL import Image  # an optional dependency, imported only for image outputs

    image = Image.open(path)
    image.load()
    return image


async def open_image(path: pathlib.Path) -> Any:
    """Open a downloaded image with PIL (in a thread) and load it."""
    return await asyncio.to_thread(_load_image, path)
