"""One aiohttp session and connector per client, and the one place where aiohttp errors
become asyncbento errors. The caller's trace context is added to each request here."""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from ._config import Limits
from ._tracing import otel_in_use, with_trace_context
from ._validate import check_headers
from .exceptions import (
    ArgumentError,
    BadInput,
    BentoMLException,
    ClientClosed,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    ReadTimeout,
    ResponseTooLarge,
    TLSError,
    TransportError,
)

# Sessions inherited by a forked child: their sockets and the selector that watches them are
# shared with the parent, so the child must neither use nor close them; keeping a reference stops
# their finalisers from touching them. At most one entry per loop per fork.
_ABANDONED_SESSIONS: list[object] = []

# The current process id, refreshed in a forked child (cheaper than os.getpid() per request).
_PID = [os.getpid()]


def _after_fork() -> None:
    _PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

T = TypeVar("T")

VerifyLike = bool | str | ssl.SSLContext


def parse_base_url(url: str) -> tuple[str, str | None]:
    """Split a client URL into an HTTP base URL and an optional Unix socket path.

    Accepts ``http(s)://host[:port][/prefix]``, ``tcp://host:port`` and
    ``file:///path/to.sock`` (a Unix domain socket), as BentoML's client does.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {type(url).__name__}")
    if "://" not in url:
        url = f"http://{url}"  # "localhost:3000", as users often type it
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        socket_path = unquote(parts.path)
        if not socket_path:
            raise ValueError(f"no socket path in {redact_url(url)!r}")
        return "http://localhost", socket_path
    if scheme == "tcp":
        if not parts.netloc:
            raise ValueError(f"no host in {redact_url(url)!r}")
        return f"http://{parts.netloc.rpartition('@')[2]}", None
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"no host in {redact_url(url)!r}")
        host = parts.netloc.rpartition("@")[2]  # credentials go in a header (basic_auth_header)
        return f"{scheme}://{host}{parts.path.rstrip('/')}", None
    raise ValueError(f"unsupported URL scheme in {redact_url(url)!r}: use http, https, tcp or file")


def basic_auth_header(url: str) -> str | None:
    """An ``Authorization: Basic`` value for credentials written in the URL, if any."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_headers(
    url: str, token: str | None, headers: Mapping[str, str] | None, user_agent: str
) -> dict[str, str]:
    """Every client-wide header: the user agent, the user's headers (checked), and the
    credentials (a bearer token, else ``user:password@`` from the URL as Basic auth)."""
    all_headers = {"User-Agent": user_agent}
    all_headers.update(check_headers(headers))
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    elif (basic := basic_auth_header(url)) is not None:
        all_headers.setdefault("Authorization", basic)
    return all_headers


def redact_url(url: str) -> str:
    """The URL with any credentials in it (``user:password@`` or a bare ``token@``) replaced by
    ``***``, for reprs and messages: both are sent as Basic auth, so both are secrets."""
    scheme, separator, rest = url.partition("://")
    if not separator:  # "user:pw@host:port", as the client also accepts
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    _, at, host = authority.rpartition("@")
    if not at:
        return url
    return f"{scheme}{separator}***@{host}{slash}{tail}"


def masked_token(token: str | None) -> str:
    """A token as reprs show it: ``'***'`` (or ``None`` when there is none)."""
    return "None" if not token else "'***'"


def request_headers(
    view: Mapping[str, str] | None, body: Mapping[str, str] | None
) -> Mapping[str, str] | None:
    """One request's headers on top of the session's: a view's own (``with_options``), then
    the body's (its Content-Type must win)."""
    if not view:
        return body
    return {**view, **body} if body else view


def ssl_option(verify: VerifyLike) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` value for a ``verify=`` option (True = system trust store)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return True
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    raise TypeError("verify must be a bool, a CA bundle path or an ssl.SSLContext")


def translate_error(exc: BaseException, *, answer_started: bool) -> BentoMLException:
    """Map an aiohttp / asyncio failure to the asyncbento exception that stands for it.

    ``answer_started`` tells whether the response headers had already arrived.
    """
    if isinstance(exc, BentoMLException):
        return exc
    if isinstance(exc.__cause__, BadInput):  # a file argument whose reading failed mid-send
        return exc.__cause__
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"timed out while connecting ({detail})")
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return ReadTimeout(
            "timed out waiting for the server" + ("" if not str(exc) else f" ({exc})")
        )
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError)):
        return TLSError(f"TLS failure: {detail}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"could not connect: {detail}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectionLost(f"the answer was cut short: {detail}", before_response=False)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError)):
        return ConnectionLost(
            f"the connection was lost: {detail}", before_response=not answer_started
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return TransportError(f"invalid HTTP answer: {detail}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return TransportError(f"request failed: {detail}")
    raise TypeError(f"not a transport failure: {exc!r}") from exc


TRANSPORT_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

ERROR_BODY_LIMIT = 1024 * 1024  # of an error answer, only the message is used


async def read_body(
    response: aiohttp.ClientResponse, limit: int | None, *, cut: bool = False
) -> bytes:
    """Read a response body of at most ``limit`` bytes (after decompression).

    Beyond the limit: with ``cut``, the first ``limit`` bytes; otherwise ``ResponseTooLarge``.
    """
    try:
        declared = response.content_length
        if limit is None or (
            declared is not None
            and declared <= limit
            and "Content-Encoding" not in response.headers
        ):
            return await response.read()  # the common case: a size known to be within bounds
        body = bytearray()
        while chunk := await response.content.readany():
            body += chunk
            if len(body) > limit:
                if cut:
                    return bytes(body[:limit])
                raise ResponseTooLarge(
                    f"the answer from {response.url.path} is larger than {limit} bytes "
                    "(Limits.max_answer_size)"
                )
        return bytes(body)
    except TRANSPORT_FAILURES as exc:
        raise translate_error(exc, answer_started=True) from exc


def client_closed() -> ClientClosed:
    """The error for work on (or cut short by) a closed client."""
    return ClientClosed("the client is closed")


class _LoopSession:
    """The session, connection slots and closer that belong to one event loop."""

    __slots__ = ("closer", "closing", "loop", "pid", "session", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
        self.loop = loop
        self.session = session
        self.pid = _PID[0]
        self.slots: asyncio.Semaphore | None = None
        self.closer: AsyncGenerator[None, None] | None = None
        self.closing = asyncio.Event()  # set by close(): ends waits between retries


async def _closer(
    sessions: dict[object, _LoopSession], state: _LoopSession
) -> AsyncGenerator[None, None]:
    """Closes its loop's session when the loop shuts down.

    Started once on the session's loop, it registers with that loop's async-generator hooks, so
    ``asyncio.run()`` (and any loop that runs ``shutdown_asyncgens()``) closes it before the loop
    closes: the session's sockets are released there, on their own loop, instead of leaking.
    """
    try:
        yield
    finally:
        if sessions.get(state.loop) is state:
            del sessions[state.loop]
        await state.session.close()


class Transport:
    """Owns the aiohttp sessions; sends requests and returns responses with headers read.

    A session is made lazily inside the running loop (so a sync client makes it on its
    background loop), one per event loop that uses the client: connections belong to a loop.
    A session is closed when its loop shuts down (``asyncio.run()`` ending) or when the client
    is closed. A semaphore sized to the pool bounds requests in flight, so waiting for a free
    connection happens before, not inside, a request's timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        limits: Limits,
        verify: VerifyLike = True,
        trust_env: bool = False,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.base_url, self.socket_path = parse_base_url(url)
        self._headers = dict(headers)
        self._trace_configs = list(trace_configs)
        if not all(isinstance(config, aiohttp.TraceConfig) for config in self._trace_configs):
            raise ArgumentError("trace_configs must be a sequence of aiohttp.TraceConfig")
        # Responses whose end something waits for (a call's span), by response.
        self._finishers: dict[aiohttp.ClientResponse, Callable[[aiohttp.ClientResponse], None]]
        self._finishers = {}
        self._limits = limits
        self._ssl = ssl_option(verify)
        self._trust_env = trust_env
        self._sessions: dict[object, _LoopSession] = {}  # by event loop
        self._last: _LoopSession | None = None  # the one used last: the hot path's shortcut
        self.closed = False

    def url(self, path: str) -> URL:
        """Absolute URL object for a route, built once and reused by every call."""
        return URL(self.base_url + path)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session used last (``None`` before the first request)."""
        return None if self._last is None else self._last.session

    def _new_session(self) -> aiohttp.ClientSession:
        connector: aiohttp.BaseConnector
        common: dict[str, Any] = {
            "limit": self._limits.max_connections,
            "limit_per_host": self._limits.max_connections_per_host,
            "keepalive_timeout": self._limits.keepalive_expiry,
        }
        if self.socket_path is not None:
            connector = aiohttp.UnixConnector(path=self.socket_path, **common)
        else:
            connector = aiohttp.TCPConnector(ssl=self._ssl, **common)
        return aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            trust_env=self._trust_env,
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=None),
            trace_configs=self._trace_configs or None,
        )

    async def _session_for(self, loop: asyncio.AbstractEventLoop) -> _LoopSession:
        """This loop's session: the first use, a change of loop (a second ``asyncio.run``,
        another thread's loop) or a forked child."""
        state = self._sessions.get(loop)
        if state is None or state.pid != _PID[0]:
            self._forget_dead_loops()
            state = _LoopSession(loop, self._new_session())
            state.slots = asyncio.Semaphore(self._limits.in_flight)
            state.closer = _closer(self._sessions, state)
            self._sessions[loop] = state
            await anext(state.closer)  # registers it with the loop's shutdown
        self._last = state
        return state

    def _forget_dead_loops(self) -> None:
        pid = _PID[0]
        for loop, state in list(self._sessions.items()):
            if state.pid != pid:  # inherited from the parent process: never touch it
                _ABANDONED_SESSIONS.append(state.session)
                del self._sessions[loop]
            elif state.loop.is_closed():
                # Closed without shutting down its async generators: nothing can run on it
                # now; dropping the session lets its sockets be closed when it is collected.
                del self._sessions[loop]

    async def start(
        self,
        method: str,
        url: URL,
        *,
        timeout: aiohttp.ClientTimeout,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        start_within: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response once its headers are in.

        ``start_within`` bounds the whole wait for the headers (a stream's ``timeout`` bounds
        only silences, which a server sending its status line a byte at a time never makes).
        The caller owns the response and must call :meth:`finish` on it.
        """
        if self.closed:
            raise client_closed()
        loop = asyncio.get_running_loop()
        state = self._last
        if state is None or state.loop is not loop or state.pid != _PID[0]:
            state = await self._session_for(loop)
        if otel_in_use():  # the application uses OpenTelemetry: send the caller's context
            headers = with_trace_context(headers)
        slots = state.slots
        assert slots is not None
        await slots.acquire()
        try:
            if self.closed:  # closed while this call waited for a free connection
                raise client_closed()
            request = state.session.request(
                method, url, data=data, headers=headers, params=params, timeout=timeout
            )
            if start_within is None:
                return await request
            return await asyncio.wait_for(request, start_within)
        except TRANSPORT_FAILURES as exc:
            slots.release()
            if self.closed:  # the connection went with the client
                raise client_closed() from exc
            raise translate_error(exc, answer_started=False) from exc
        except BaseException:
            slots.release()
            raise

    def closed_error(self) -> ClientClosed:
        """The error for work on this transport once it is closed."""
        return client_closed()

    async def guard(self, reading: Awaitable[T]) -> T:
        """Await ``reading`` (of an answer); once the client is closed, it raises
        :class:`~asyncbento.exceptions.ClientClosed` instead of what the cut connection gives."""
        if self.closed:
            if inspect.iscoroutine(reading):
                reading.close()
            raise client_closed()
        try:
            return await reading
        except TransportError as exc:
            if self.closed:
                raise client_closed() from exc
            raise

    def finish(self, response: aiohttp.ClientResponse) -> None:
        """Give the response's connection back, or close it if the body was not read to the
        end (a stream left early): such a connection cannot carry another request."""
        if response.content.at_eof():
            response.release()
        else:
            response.close()
        if self._finishers:
            finisher = self._finishers.pop(response, None)
            if finisher is not None:
                finisher(response)
        state = self._last
        loop = asyncio.get_running_loop()
        if state is None or state.loop is not loop:
            state = self._sessions.get(loop)
        if state is not None and state.slots is not None:
            state.slots.release()

    @property
    def limits(self) -> Limits:
        """The pool and answer-size limits this transport was made with."""
        return self._limits

    def on_finish(
        self, response: aiohttp.ClientResponse, finisher: Callable[[aiohttp.ClientResponse], None]
    ) -> None:
        """Have :meth:`finish` call ``finisher(response)`` once the response is done with."""
        self._finishers[response] = finisher

    async def read(self, response: aiohttp.ClientResponse) -> bytes:
        """Read a whole response body (at most ``max_answer_size`` bytes once decompressed),
        translating transport failures.

        Raises:
            ResponseTooLarge: the body is larger than the limit.
        """
        return await self.guard(read_body(response, self._limits.max_answer_size))

    async def read_error_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The start of an error answer's body: enough for its message, never all of a huge one
        (the rest is left unread, and the connection is closed by :meth:`finish`)."""
        return await self.guard(read_body(response, ERROR_BODY_LIMIT, cut=True))

    async def close(self) -> None:
        """Close the sessions and their connections; safe to call twice.

        The running loop's session is closed here; another live loop's is closed on that loop
        (not waited for: that loop may be waiting on this one).
        """
        self.closed = True
        self._last = None
        self._forget_dead_loops()
        current = asyncio.get_running_loop()
        for state in list(self._sessions.values()):
            if state.closer is None:
                continue
            if state.loop is current:
                await _shut(state)
            else:
                asyncio.run_coroutine_threadsafe(_shut(state), state.loop)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` between two attempts; if the client is closed meanwhile, raise
        :class:`~asyncbento.exceptions.ClientClosed` at once instead of waiting it out."""
        state = None if self.closed else self._sessions.get(asyncio.get_running_loop())
        if state is None:
            if self.closed:
                raise client_closed()
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(state.closing.wait(), seconds)
        except asyncio.TimeoutError:
            return
        raise client_closed()


async def _shut(state: _LoopSession) -> None:
    state.closing.set()
    if state.closer is not None:
        await state.closer.aclose()
