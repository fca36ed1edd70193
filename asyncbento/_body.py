"""What a call sends: the body for an endpoint's bound arguments, rebuildable per attempt.

JSON and root bodies are plain bytes, made once. Bodies with files are rebuilt for every
attempt from their :class:`~asyncbento._files.FileSource`, so a retry re-sends every file from
its start and never a half-consumed stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from ._codec import encode_form_value, encode_json
from ._schema import Endpoint, RootKind
from .exceptions import ArgumentValueError

if TYPE_CHECKING:
    from ._files import FileInput, FileSource

JSON_HEADERS: Final = {"Content-Type": "application/json"}
TEXT_HEADERS: Final = {"Content-Type": "text/plain; charset=utf-8"}


@dataclass(slots=True, eq=False, repr=False)
class Body:
    """A request body: fixed bytes, or the parts of a multipart / streamed-file body.

    Slotted, and without a repr (its data may hold what the caller sent); one is made per call.
    """

    headers: Mapping[str, str] | None
    data: bytes | None = None
    fields: tuple[tuple[str, str | FileInput], ...] = ()
    root_file: FileSource | None = None
    rewindable: bool = True

    def payload(self) -> Any:
        """What aiohttp sends for one attempt (fresh file streams each time)."""
        if self.data is not None:
            return self.data
        # File bodies only: the file machinery (aiofiles, PIL) is imported on first use.
        from ._files import FileSource, RemoteFile, file_payload

        if self.root_file is not None:
            return file_payload(self.root_file)
        writer = aiohttp.MultipartWriter("form-data")
        for name, value in self.fields:
            if isinstance(value, FileSource):
                part = file_payload(value)
                # Raw (8-bit) names, as BentoML's client sends them: the server does not
                # percent-decode, so quoting would change the name the service sees.
                part.set_content_disposition(
                    "form-data",
                    quote_fields=False,
                    name=name,
                    filename=_header_safe(value.filename),
                )
                writer.append_payload(part)
            else:
                text = value.url if isinstance(value, RemoteFile) else value
                part = aiohttp.payload.StringPayload(text, content_type="text/plain")
                part.set_content_disposition("form-data", quote_fields=False, name=name)
                writer.append_payload(part)
        return writer


def _header_safe(filename: str) -> str:
    return "".join(" " if ch in "\r\n\0" else ch for ch in filename)


async def build_body(endpoint: Endpoint, bound: Any) -> Body:
    """Encode bound arguments (from :meth:`Endpoint.bind`) as the endpoint expects them.

    Raises:
        ArgumentError: a value that cannot be sent, named by its argument (a TypeError).
        ArgumentValueError: an empty root string (a ValueError).
        InputFileNotFound: a file argument whose path does not exist (a FileNotFoundError).
    """
    if endpoint.root is not None:
        return await _root_body(endpoint, bound)
    if not endpoint.has_files:
        return Body(headers=JSON_HEADERS, data=encode_json(bound, endpoint=endpoint.name))
    from ._files import FileSource, prepare_file, prepare_files

    fields: list[tuple[str, str | FileInput]] = []
    for name, value in bound.items():
        if name in endpoint.file_fields:
            if value is None:
                continue  # an optional file left out
            fields.append((name, await prepare_file(value, endpoint=endpoint.name, argument=name)))
        elif name in endpoint.file_list_fields:
            for item in await prepare_files(value, endpoint=endpoint.name, argument=name):
                fields.append((name, item))
        else:
            fields.append((name, encode_form_value(value, endpoint=endpoint.name, argument=name)))
    rewindable = all(not isinstance(v, FileSource) or v.rewindable for _, v in fields)
    return Body(headers=None, fields=tuple(fields), rewindable=rewindable)


async def _root_body(endpoint: Endpoint, value: Any) -> Body:
    kind = endpoint.root
    if kind in (RootKind.TEXT, RootKind.BYTES) and isinstance(value, (str, bytes)) and not value:
        # BentoML's server turns an empty body into the text "{}": refuse rather than corrupt.
        raise ArgumentValueError(
            f"{endpoint.name}() cannot send an empty root input: "
            "BentoML's server would receive it as '{}'"
        )
    if kind is RootKind.FILE:
        from ._files import RemoteFile, prepare_file

        source = await prepare_file(value, endpoint=endpoint.name, argument=None)
        if isinstance(source, RemoteFile):
            return Body(headers=TEXT_HEADERS, data=source.url.encode("utf-8"))
        headers = {"Content-Type": source.content_type or "application/octet-stream"}
        return Body(headers=headers, root_file=source, rewindable=source.rewindable)
    if kind is RootKind.TEXT and isinstance(value, str):
        return Body(headers=TEXT_HEADERS, data=value.encode("utf-8"))
    if kind in (RootKind.TEXT, RootKind.BYTES) and isinstance(
        value, (bytes, bytearray, memoryview)
    ):
        return Body(headers=TEXT_HEADERS, data=bytes(value))
    if kind is RootKind.BYTES and isinstance(value, str):
        return Body(headers=TEXT_HEADERS, data=value.encode("utf-8"))
    return Body(headers=JSON_HEADERS, data=encode_json(value, endpoint=endpoint.name))
