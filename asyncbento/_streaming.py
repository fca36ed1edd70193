"""Streaming answers: the stream and Server-Sent Events generators (one item per HTTP chunk),
incremental UTF-8, and the SSE parser.

BentoML writes each yielded value as one HTTP chunk with no framing (PROTOCOL.md §5), and its
own clients yield one item per chunk, so code that parses each item (one JSON object per
``yield``, token counting) depends on those boundaries. aiohttp's reader records them
(``StreamReader.readchunk`` says where a chunk ends), so :func:`stream_items` keeps them however
the network groups the bytes: chunks that arrive in one read are still separate items, and a
chunk split across reads is joined back. A body without chunked framing (``Content-Length``,
or read until the connection closes) has no boundaries to keep: it yields what arrives.

Text streams are decoded incrementally: a multi-byte character split across two chunks is
completed from the next one, never split and never an error.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp

from ._codec import raise_named
from ._transport import TRANSPORT_FAILURES, Transport, client_closed, translate_error
from .exceptions import BentoMLException, ResponseDecodeError


async def read_chunk(response: aiohttp.ClientResponse) -> bytes:
    """The next bytes of the body as they arrive (``b""`` at the end).

    A connection that drops before the body is complete raises ``ConnectionLost``.
    """
    try:
        return await response.content.readany()
    except TRANSPORT_FAILURES as exc:
        raise translate_error(exc, answer_started=True) from exc


def is_chunked(response: aiohttp.ClientResponse) -> bool:
    """Whether the body has chunked framing, i.e. chunk boundaries to keep."""
    return "chunked" in response.headers.get("Transfer-Encoding", "").lower()


async def _unframed(content: aiohttp.StreamReader) -> tuple[bytes, bool]:
    # Without chunked framing, what has arrived is an item: (bytes, True), (b"", False) at the end.
    data = await content.readany()
    return data, bool(data)


async def _rest_of_chunk(content: aiohttp.StreamReader, pieces: list[bytes]) -> bytes:
    """A chunk whose start (``pieces``) has been read but not its end (it was cut across
    network reads). ``pieces`` holds what has come of it if the connection breaks meanwhile."""
    while True:
        data, chunk_ends = await content.readchunk()
        pieces.append(data)
        if chunk_ends or not data:
            return b"".join(pieces)


async def _received_before_the_break(
    content: aiohttp.StreamReader, started: list[bytes] | None
) -> list[bytes]:
    """The chunks that came before the connection broke, not yet handed out: aiohttp raises
    the failure before it gives what it has buffered, so they are read here with the failure
    set aside (``started``: the beginning of a chunk being read). A chunk the break cut short
    comes last, as it is.

    This reads three private attributes of aiohttp's ``StreamReader`` (there is no public way);
    where they are missing, only ``started`` is recovered.
    """
    pieces, partial = [], list(started or [])
    failure = content.exception()
    if failure is not None and all(
        hasattr(content, name) for name in ("_exception", "_buffer", "_http_chunk_splits")
    ):
        content._exception = None
        try:
            # readchunk returns at once while bytes or chunk ends are buffered, and each call
            # takes some of them, so this ends.
            while content._buffer or content._http_chunk_splits:
                data, chunk_ends = await content.readchunk()
                partial.append(data)
                if chunk_ends:
                    if chunk := b"".join(partial):
                        pieces.append(chunk)
                    partial = []
        finally:
            content._exception = failure
    if rest := b"".join(partial):
        pieces.append(rest)
    return pieces


async def stream_items(
    opening: Callable[[], Awaitable[aiohttp.ClientResponse]],
    transport: Transport,
    *,
    text: bool,
) -> AsyncGenerator[Any, None]:
    """One item per HTTP chunk of the answer ``opening()`` gives: ``str`` if ``text``, else bytes.

    Chunks that arrive in one network read are separate items; a chunk cut across reads is
    joined back (``readchunk`` says where each chunk ends). Nothing is sent until the first
    item is asked for; ``transport.finish`` releases the response when the stream ends, fails
    or is closed early. Once the client is closed, the next item raises ``ClientClosed``.
    """
    response = await opening()
    decoder = TextDecoder() if text else None
    content = response.content
    read = content.readchunk if is_chunked(response) else partial(_unframed, content)
    try:
        while True:
            if transport.closed:
                raise client_closed()
            started: list[bytes] | None = None
            try:  # the chunk reader inline: one coroutine less per item on this hot path
                chunk, chunk_ends = await read()
                if not chunk_ends and chunk:
                    started = [chunk]
                    chunk = await _rest_of_chunk(content, started)
            except TRANSPORT_FAILURES as exc:
                if transport.closed:  # the connection went with the client
                    raise client_closed() from exc
                failure = translate_error(exc, answer_started=True)
                # What came before the break is handed out first, as a blocking reader would.
                for chunk in await _received_before_the_break(content, started):
                    if decoder is None:
                        yield chunk
                    elif piece := decoder.feed(chunk):
                        yield piece
                raise failure from exc
            if not chunk:
                if chunk_ends:
                    continue  # a chunk end with no bytes left over: nothing to yield
                break  # the end of the body
            if decoder is None:
                yield chunk
            elif piece := decoder.feed(chunk):
                yield piece
        if decoder is not None and (tail := decoder.end()):
            yield tail
    except BentoMLException as exc:  # a broken answer, named by its ids
        raise_named(exc, response.headers)
    finally:
        transport.finish(response)


async def sse_events(stream: AsyncGenerator[str, None]) -> AsyncIterator[ServerSentEvent]:
    """The Server-Sent Events of a text stream, up to a ``data: [DONE]`` sentinel or its end."""
    parser = SSEParser()
    try:
        async for text in stream:
            for event in parser.feed(text):
                if event.is_done:
                    return
                yield event
        for event in parser.close():
            if event.is_done:
                return
            yield event
    finally:
        await stream.aclose()


class TextDecoder:
    """Incremental UTF-8: a character split across reads waits until it is whole."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder: codecs.BufferedIncrementalDecoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> str:
        """Decode a chunk; returns what is complete so far (possibly "")."""
        if not self._decoder.buffer:  # nothing held back: the usual, whole-characters chunk
            try:
                return chunk.decode("utf-8")  # a quarter of the incremental decoder's cost
            except UnicodeDecodeError:
                pass  # a character cut at the end (or invalid bytes): the slow path decides
        try:
            return self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ResponseDecodeError(f"the stream is not valid UTF-8: {exc}") from exc

    def end(self) -> str:
        """Flush at the end of the stream; a truncated character is an error."""
        try:
            return self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ResponseDecodeError(f"the stream ended inside a UTF-8 character: {exc}") from exc


@dataclass(frozen=True)
class ServerSentEvent:
    """One Server-Sent Event: ``data`` joins the event's data lines with newlines."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """True for the ``data: [DONE]`` sentinel that OpenAI-style streams end with."""
        return self.data == DONE_SENTINEL


DONE_SENTINEL = "[DONE]"


class SSEParser:
    """Incremental parser for the ``text/event-stream`` format (WHATWG rules)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, text: str) -> list[ServerSentEvent]:
        """Add decoded text; return the events it completes."""
        self._buffer += text
        events: list[ServerSentEvent] = []
        while True:
            line, found = self._next_line()
            if not found:
                return events
            event = self._line(line)
            if event is not None:
                events.append(event)

    def close(self) -> list[ServerSentEvent]:
        """End of stream: a final event without its blank line is still delivered."""
        events: list[ServerSentEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer.rstrip("\r"), ""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _next_line(self) -> tuple[str, bool]:
        buffer = self._buffer
        newline = buffer.find("\n")
        carriage = buffer.find("\r")
        if carriage != -1 and (newline == -1 or carriage < newline):
            if carriage + 1 == len(buffer):
                return "", False  # a CR at the end may be the first half of CRLF
            index = carriage
            end = carriage + 2 if buffer[carriage + 1] == "\n" else carriage + 1
        elif newline != -1:
            index, end = newline, newline + 1
        else:
            return "", False
        self._buffer = buffer[end:]
        return buffer[:index], True

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event
