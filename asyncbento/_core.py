"""The state of a client: what it shares with its views, and each view's call options.

``_Core`` is shared by a client and every view ``with_options`` makes of it: the transport,
the service's endpoints once set up, the download directory (and reading an answer as an
endpoint's output, which may save a file there). ``_Options`` belongs to one
client or view: its timeout (with the aiohttp timeouts made once), retry policy and headers.
``attempt_once`` is one attempt of an endpoint's request with that state, as the retry loop
calls it.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from ._codec import decode_body, error_from_answer
from ._config import DEFAULT_TOTAL, RetryPolicy, Timeout, TimeoutLike
from ._schema import Endpoint, OutputKind
from ._transport import Transport

if TYPE_CHECKING:
    from ._body import Body


class _Options:
    """Per-client (or per-view) call options, with aiohttp timeouts made once."""

    __slots__ = ("call_timeout", "headers", "retry", "stream_timeout", "timeout")

    def __init__(
        self,
        timeout: Timeout,
        retry: RetryPolicy | None,
        call_timeout: aiohttp.ClientTimeout,
        stream_timeout: aiohttp.ClientTimeout,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self.call_timeout = call_timeout
        self.stream_timeout = stream_timeout
        self.headers: dict[str, str] | None = None  # a view's own headers (with_options)

    @classmethod
    def make(cls, timeout: TimeoutLike, retry: RetryPolicy | None) -> _Options:
        """Options from a client's (or view's) ``timeout`` and ``retry`` arguments."""
        limit = Timeout.coerce(timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be an asyncbento.RetryPolicy or None, not {retry!r}")
        call = aiohttp.ClientTimeout(total=limit.total, connect=limit.connect, sock_read=limit.read)
        # A stream may run far longer than any one call: bound its silences, not its length.
        stream = aiohttp.ClientTimeout(
            total=None,
            connect=limit.connect if limit.connect is not None else limit.total,
            sock_read=limit.read if limit.read is not None else limit.total,
        )
        return cls(limit, retry, call, stream)

    @property
    def wait_limit(self) -> float:
        """The call timeout, as a readiness wait's default (the default total when unbounded)."""
        return self.timeout.total or DEFAULT_TOTAL


class _Core:
    """State shared by a client and every view made from it by ``with_options``."""

    def __init__(
        self,
        url: str,
        transport: Transport,
        server_ready_timeout: float | None,
        download_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.url = url
        self.transport = transport
        self.server_ready_timeout = server_ready_timeout
        self.readyz_url = transport.url("/readyz")
        self.schema_url = transport.url("/schema.json")
        self.endpoints: dict[str, Endpoint] | None = None
        self.service_name = ""
        self.setup_lock: asyncio.Lock | None = None
        self.check_schema = False
        self._download_dir = pathlib.Path(download_dir) if download_dir is not None else None

    async def download_directory(self) -> pathlib.Path:
        """Where file outputs go: the user's choice, else one new directory per client."""
        if self._download_dir is None:
            # Made off the event loop (a file system call).
            made = pathlib.Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="asyncbento-"))
            if not self._adopt(made):
                await asyncio.to_thread(made.rmdir)  # another call made one meanwhile
        assert self._download_dir is not None
        return self._download_dir

    async def read_output(self, endpoint: Endpoint, response: aiohttp.ClientResponse) -> Any:
        """A successful call's answer as the endpoint's output: a decoded body, or a file
        saved in the download directory (a loaded image for image outputs)."""
        kind = endpoint.output
        if kind is OutputKind.FILE or kind is OutputKind.IMAGE:
            from ._files import open_image, save_download  # only file outputs need it

            limit = self.transport.limits.max_file_size
            directory = await self.download_directory()
            path = await self.transport.guard(save_download(response, directory, limit))
            return path if kind is OutputKind.FILE else await open_image(path)
        data = await self.transport.read(response)
        return decode_body(kind, data, response.headers.get("Content-Type"))

    def _adopt(self, made: pathlib.Path) -> bool:
        if self._download_dir is not None:
            return False
        self._download_dir = made
        return True


async def attempt_once(
    transport: Transport,
    verb: str,
    url: URL,
    timeout: aiohttp.ClientTimeout,
    body: Body | None,
    headers: Mapping[str, str] | None,
    params: Mapping[str, str] | None,
    start_within: float | None,
) -> aiohttp.ClientResponse:
    """One attempt of an endpoint's request: a 2xx response with its headers read (the caller
    must ``finish`` it), or the typed error the answer's status and body make."""
    response = await transport.start(
        verb,
        url,
        timeout=timeout,
        data=None if body is None else body.payload(),
        headers=headers,
        params=params,
        start_within=start_within,
    )
    if response.status < 400:
        return response
    try:
        data = await transport.read_error_body(response)
    finally:
        transport.finish(response)
    raise error_from_answer(response.status, response.reason or "", data, response.headers)
