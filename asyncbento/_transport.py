"""One aiohttp session and connector per client, and the one place where aiohttp errors
become asyncbento errors."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from ._config import Limits
from .exceptions import (
    BentoMLException,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    ReadTimeout,
    TLSError,
    TransportError,
)

# Sessions left behind in a forked child, or by an event loop that has gone (a client used
# again under a new loop): they must be neither used nor closed from here; keeping a reference
# stops "unclosed session" warnings at GC.
_ABANDONED_SESSIONS: list[object] = []

VerifyLike = bool | str | ssl.SSLContext


def parse_base_url(url: str) -> tuple[str, str | None]:
    """Split a client URL into an HTTP base URL and an optional Unix socket path.

    Accepts ``http(s)://host[:port][/prefix]``, ``tcp://host:port`` and
    ``file:///path/to.sock`` (a Unix domain socket), as BentoML's client does.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    if "://" not in url:
        url = f"http://{url}"  # "localhost:3000", as users often type it
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        socket_path = unquote(parts.path)
        if not socket_path:
            raise ValueError(f"no socket path in {url!r}")
        return "http://localhost", socket_path
    if scheme == "tcp":
        if not parts.netloc:
            raise ValueError(f"no host in {url!r}")
        return f"http://{parts.netloc.rpartition('@')[2]}", None
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        host = parts.netloc.rpartition("@")[2]  # credentials go in a header (basic_auth_header)
        return f"{scheme}://{host}{parts.path.rstrip('/')}", None
    raise ValueError(f"unsupported URL scheme in {url!r}: use http, https, tcp or file")


def basic_auth_header(url: str) -> str | None:
    """An ``Authorization: Basic`` value for credentials written in the URL, if any."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def redact_url(url: str) -> str:
    """The URL with any password in it replaced by ``***``, for reprs and messages."""
    scheme, separator, rest = url.partition("://")
    if not separator:  # "user:pw@host:port", as the client also accepts
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:***@{host}{slash}{tail}"


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


class Transport:
    """Owns the aiohttp session; sends requests and returns responses with headers read.

    The session is made lazily inside the running loop (so a sync client makes it on its
    background loop). A semaphore sized to the pool bounds requests in flight, so waiting for
    a free connection happens before, not inside, a request's timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        limits: Limits,
        verify: VerifyLike = True,
        trust_env: bool = False,
    ) -> None:
        self.base_url, self.socket_path = parse_base_url(url)
        self._headers = dict(headers)
        self._limits = limits
        self._ssl = ssl_option(verify)
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the session belongs to
        self.closed = False

    def url(self, path: str) -> URL:
        """Absolute URL object for a route, built once and reused by every call."""
        return URL(self.base_url + path)

    def _open_session(self) -> aiohttp.ClientSession:
        """A new session on the running loop (the first one, or after a change of loop)."""
        self._abandon_session()
        self._loop = asyncio.get_running_loop()
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
        self._slots = asyncio.Semaphore(self._limits.in_flight)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            trust_env=self._trust_env,
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def start(
        self,
        method: str,
        url: URL,
        *,
        timeout: aiohttp.ClientTimeout,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response once its headers are in.

        The caller owns the response and must call :meth:`finish` on it.
        """
        if self.closed:
            raise RuntimeError("the client is closed")
        session = self._session
        if session is None or self._loop is not asyncio.get_running_loop():
            # First use, or a client used again under a new event loop (a second asyncio.run):
            # the old session's connections belong to the old loop.
            session = self._open_session()
        slots = self._slots
        assert slots is not None
        await slots.acquire()
        try:
            return await session.request(
                method, url, data=data, headers=headers, params=params, timeout=timeout
            )
        except TRANSPORT_FAILURES as exc:
            slots.release()
            raise translate_error(exc, answer_started=False) from exc
        except BaseException:
            slots.release()
            raise

    def finish(self, response: aiohttp.ClientResponse) -> None:
        """Give the response's connection back, or close it if the body was not read to the
        end (a stream left early): such a connection cannot carry another request."""
        if response.content.at_eof():
            response.release()
        else:
            response.close()
        if self._slots is not None:
            self._slots.release()

    async def read(self, response: aiohttp.ClientResponse) -> bytes:
        """Read a whole response body, translating transport failures."""
        try:
            return await response.read()
        except TRANSPORT_FAILURES as exc:
            raise translate_error(exc, answer_started=True) from exc

    def _abandon_session(self) -> None:
        # A session whose loop is gone (or in another process) cannot be closed from here; it
        # is kept referenced so that its finaliser does not warn about it.
        if self._session is not None:
            _ABANDONED_SESSIONS.append(self._session)
        self._session = None
        self._slots = None
        self._loop = None

    async def close(self) -> None:
        """Close the session and its connections; safe to call twice."""
        self.closed = True
        if self._session is not None and self._loop is not asyncio.get_running_loop():
            self._abandon_session()  # made under another loop: nothing to close here
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
