"""AsyncHTTPClient: the one implementation of every client behaviour.

The client holds its options and runs its one set-up (``_setup.py``: the ``/readyz`` wait and
``/schema.json``); it owns the request path under the retry policy (``_open`` / ``_exchange``)
and thin entrances to the rooms next door: endpoint methods and name lookup in
``_endpoints.py``, task operations in ``_tasks.py``, stream and SSE generators in
``_streaming.py``, answers read as outputs by the shared state (``_core.py``), batches in
``_batch.py`` / ``_overload.py``. The sync client (``_sync.py``) runs these very coroutines on
its own loop thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import aiohttp
from yarl import URL

from ._batch import Inputs, in_order, make_window, run_batch
from ._body import Body, build_body
from ._codec import Reader, raise_named, read_json
from ._config import (
    DEFAULT_LIMITS,
    DEFAULT_RETRY,
    DEFAULT_TOTAL,
    NOT_GIVEN,
    Limits,
    RetryPolicy,
    TimeoutLike,
    _NotGiven,
)
from ._core import _Core, _Options, attempt_once
from ._endpoints import (
    AsyncEndpointMethod,
    DeferredCall,
    DeferredEndpoint,
    bind_attributes,
    make_methods,
    resolve,
)
from ._request import Params, send_request
from ._response import Response
from ._schema import Endpoint, OutputKind, parse_schema
from ._setup import PROBE_TIMEOUT, fetch_schema, probe, schema_document, wait_until_ready
from ._streaming import stream_items
from ._tracing import run_attempts
from ._transport import (
    TRANSPORT_FAILURES,
    Transport,
    VerifyLike,
    client_headers,
    masked_token,
    redact_url,
    request_headers,
    translate_error,
)
from ._validate import check_headers, check_seconds, check_token
from ._version import __version__
from .exceptions import BentoMLException

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._limiter import Adaptive

T = TypeVar("T")

DEFAULT_USER_AGENT = f"asyncbento/{__version__}"


class AsyncHTTPClient:
    """An async client for a BentoML service; a drop-in for ``bentoml.AsyncHTTPClient``.

    Use it as ``async with AsyncHTTPClient(url) as client:``; entering waits for the server to
    be ready (unless ``server_ready_timeout=0``), reads ``/schema.json`` and makes one method
    per endpoint, named after it (``api_<name>`` when the name clashes with the client's own).

    Args:
        url: ``http(s)://host[:port]``, ``tcp://host:port`` or ``file:///path/to.sock``.
        token: Bearer token (default: ``$BENTO_CLOUD_API_KEY``); never shown in reprs.
        timeout: Seconds per call (a total), or an :class:`asyncbento.Timeout`.
        server_ready_timeout: Seconds to wait for ``/readyz`` on entry (``None``: the call
            timeout; ``0``: do not wait).
        headers: Extra headers sent with every request.
        retry: A :class:`asyncbento.RetryPolicy`, or ``None`` to never retry.
        limits: Connection pool limits, an :class:`asyncbento.Limits`.
        verify: TLS verification: ``True`` (system CAs), ``False``, a CA bundle path, or an
            ``ssl.SSLContext``.
        trust_env: Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc``.
        download_dir: Directory for file outputs (default: a new one under the temp dir).
            Files there belong to you: closing the client never deletes them.
        check_schema: For a generated client (``asyncbento generate``), which embeds its
            service's schema: also fetch ``/schema.json`` at set-up and raise
            :class:`~asyncbento.exceptions.SchemaMismatch` if the service changed.
        trace_configs: ``aiohttp.TraceConfig`` objects for the client's session, for aiohttp's
            own request tracing (timings, connection reuse, DNS) and tools built on it.
    """

    # A generated client's embedded /schema.json, used at set-up instead of fetching it.
    _embedded_schema: ClassVar[Mapping[str, Any] | None] = None

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: TimeoutLike = DEFAULT_TOTAL,
        server_ready_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        limits: Limits = DEFAULT_LIMITS,
        verify: VerifyLike = True,
        trust_env: bool = False,
        download_dir: str | os.PathLike[str] | None = None,
        check_schema: bool = False,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        if token is None:
            token = os.environ.get("BENTO_CLOUD_API_KEY") or None
        self._token = check_token(token)
        self._options = _Options.make(timeout, retry)
        transport = Transport(
            url,
            headers=client_headers(url, self._token, headers, DEFAULT_USER_AGENT),
            limits=Limits.check(limits),
            verify=verify,
            trust_env=trust_env,
            trace_configs=trace_configs,
        )
        ready_wait = check_seconds("server_ready_timeout", server_ready_timeout, zero_ok=True)
        self._core = _Core(url, transport, ready_wait, download_dir)
        self._core.check_schema = check_schema
        self._methods: dict[str, AsyncEndpointMethod] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(url={redact_url(self._core.url)!r}, "
            f"token={masked_token(self._token)}, timeout={self._options.timeout!r}, "
            f"retry={self._options.retry!r})"
        )

    @property
    def url(self) -> str:
        """The URL this client was made with."""
        return self._core.url

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        """The service's endpoints by name (after set-up)."""
        return dict(self._require_setup())

    @property
    def service_name(self) -> str:
        """The service's name from ``/schema.json`` (after set-up)."""
        self._require_setup()
        return self._core.service_name

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        try:
            await self._setup()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections. Safe to call more than once; downloaded files are kept."""
        await self._core.transport.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._core.transport.closed

    async def _setup(self) -> None:
        core = self._core
        if core.endpoints is None:
            if core.setup_lock is None:
                core.setup_lock = asyncio.Lock()
            async with core.setup_lock:
                if core.endpoints is None:
                    wait = core.server_ready_timeout
                    if wait is None:
                        wait = self._options.wait_limit
                    if wait > 0:
                        await self.wait_until_server_ready(wait)
                    document = await self._schema_document()
                    core.service_name, core.endpoints = parse_schema(document)
        self._bind_methods()

    def _require_setup(self) -> dict[str, Endpoint]:
        endpoints = self._core.endpoints
        if endpoints is None:
            raise RuntimeError(
                "Client is not set up yet: use `async with AsyncHTTPClient(url) as client:`"
            )
        return endpoints

    def _bind_methods(self) -> None:
        if not self._methods:
            self._methods = make_methods(self, self._require_setup(), self._core.transport.url)
            bind_attributes(self, self._methods)

    def _bound_methods(self) -> dict[str, AsyncEndpointMethod]:
        self._bind_methods()
        return self._methods

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not found normally: endpoint names before set-up, or on a
        # view made before its client was set up, or a name the service does not have.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._core.endpoints is None:
            # Used without `async with`: the first await of a call sets the client up.
            return DeferredEndpoint(self, name)
        if not self._methods:
            self._bind_methods()
            return getattr(self, name)
        return resolve(self, name)  # EndpointNotFound, also an AttributeError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the service's ``__call__`` endpoint, if it has one."""
        if self._core.endpoints is None:
            return DeferredCall(self, "__call__", None, args, kwargs)  # sets up when awaited
        method = self._methods.get("__call__")
        if method is None:
            raise TypeError("this service has no __call__ endpoint")
        return method(*args, **kwargs)

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call an endpoint by its name (as ``client.<name>(...)`` would).

        Args:
            name: The endpoint's name in the service (as in ``/schema.json``).
            *args: Positional arguments, mapped onto the endpoint's parameters in order.
            **kwargs: Keyword arguments, by parameter name.

        Returns:
            A coroutine of the output, or an async generator for a stream endpoint.

        Raises:
            EndpointNotFound: the service has no endpoint of that name (a ``NotFound``; raised
                without any request).
        """
        if self._core.endpoints is None:
            return DeferredCall(self, name, None, args, kwargs)  # sets up when awaited
        return resolve(self, name)(*args, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: str | bytes | None = None,
        data: Any = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
    ) -> Response:
        """Send a request to any route of the service (``/metrics``, mounted apps, ...).

        It goes through this client's connections, headers (token included), timeout and retry
        policy; statuses are retried only for GET, HEAD and OPTIONS.

        Args:
            method: The HTTP method, e.g. ``"GET"``.
            url: A path of the service (``"/readyz"``), or an absolute URL on its origin.
            params: Query parameters.
            headers: Headers for this request only.
            json: A value to send as a JSON body.
            content: A raw body (``str`` is sent as UTF-8).
            data: A dict sent as a form (``application/x-www-form-urlencoded``), or raw bytes.
            timeout: Seconds (or a ``Timeout``; ``None``: no limit) instead of the client's.

        Returns:
            The whole answer, as an :class:`asyncbento.Response`; an error status is returned,
            not raised (``response.raise_for_status()`` raises it, typed).
        """
        return await send_request(
            self._core,
            self._options,
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            content=content,
            data=data,
            timeout=timeout,
        )

    def with_options(
        self,
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        retry: RetryPolicy | None | _NotGiven = NOT_GIVEN,
        headers: Mapping[str, str] | _NotGiven = NOT_GIVEN,
    ) -> Self:
        """A light view of this client with other call options, sharing its connections.

        Args:
            timeout: Seconds per call, a :class:`asyncbento.Timeout`, or None for no limit.
            retry: A :class:`asyncbento.RetryPolicy`, or None to never retry.
            headers: Headers for the view's requests, on top of (and overriding) this
                client's; this client's own requests do not get them.

        Returns:
            A client that shares this one's session, endpoints and download directory.
        """
        view = object.__new__(type(self))
        view._token = self._token
        view._core = self._core
        view._options = _Options.make(
            self._options.timeout if isinstance(timeout, _NotGiven) else timeout,
            self._options.retry if isinstance(retry, _NotGiven) else retry,
        )
        view._options.headers = self._options.headers
        if not isinstance(headers, _NotGiven):
            view._options.headers = {**(self._options.headers or {}), **check_headers(headers)}
        view._methods = {}
        if self._core.endpoints is not None:
            view._bind_methods()
        return view

    # ----------------------------------------------------------------- batches

    async def map(
        self,
        endpoint: str | AsyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        return_exceptions: bool = False,
        progress: bool = False,
        adaptive: bool | Adaptive = True,
    ) -> list[Any]:
        """Call ``endpoint`` once per input, at most ``concurrency`` at a time; results in order.

        Args:
            endpoint: An endpoint name or method of this client.
            inputs: An iterable or async iterable (pulled lazily) of keyword dicts, or of
                values for a root-input endpoint.
            concurrency: The most calls in flight at once.
            return_exceptions: Put a failed input's exception in its place and go on;
                otherwise the first failure cancels the rest and is raised.
            progress: Show a tqdm progress bar (needs ``asyncbento[progress]``).
            adaptive: Keep as many calls in flight as the service accepts, up to
                ``concurrency`` (inputs it refuses with 429/503 are sent again); ``False``
                keeps exactly ``concurrency``; an :class:`asyncbento.Adaptive` tunes it.

        Returns:
            One result (or exception) per input, in input order.
        """
        pairs = self._pairs(
            endpoint, inputs, concurrency, False, return_exceptions, progress, adaptive
        )
        return await in_order(pairs)

    def imap(
        self,
        endpoint: str | AsyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        ordered: bool = False,
        return_exceptions: bool = False,
        progress: bool = False,
        adaptive: bool | Adaptive = True,
    ) -> AsyncIterator[tuple[int, Any]]:
        """Like :meth:`map`, but yield ``(index, result)`` pairs as calls finish.

        Inputs are pulled lazily through a sliding window, so memory stays flat for any
        number of inputs. Arguments as for :meth:`map` (``return_exceptions=True`` yields a
        failed input's exception as its result), plus:

        Args:
            ordered: Yield in input order instead of completion order.

        Returns:
            An async iterator of ``(index, result)``; ``index`` is the input's position.
        """
        return self._pairs(
            endpoint, inputs, concurrency, ordered, return_exceptions, progress, adaptive
        )

    async def map_tasks(
        self,
        endpoint: str | AsyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        timeout: float | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        adaptive: bool | Adaptive = True,
    ) -> list[Any]:
        """Submit every input to a task endpoint and collect the results in input order.

        Args:
            endpoint: A task endpoint's name or method.
            inputs: An iterable or async iterable of keyword dicts.
            concurrency: The most tasks submitted and polled at once.
            timeout: Seconds to wait for each task (None: no limit).
            return_exceptions: Put a failed task's exception in its place and go on.
            progress: Show a tqdm progress bar.
            adaptive: As for :meth:`map`; only a refused submission is sent again (never a
                task the service has accepted).

        Returns:
            One output (or exception) per input, in input order.
        """
        return await in_order(
            self._pairs(
                endpoint, inputs, concurrency, False, return_exceptions, progress, adaptive, timeout
            )
        )

    async def _pairs(
        self,
        endpoint: str | AsyncEndpointMethod,
        inputs: Inputs,
        concurrency: int,
        ordered: bool,
        return_exceptions: bool,
        progress: bool,
        adaptive: bool | Adaptive,
        task_timeout: float | None | _NotGiven = NOT_GIVEN,
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """The batch behind map / imap / map_tasks (tasks when ``task_timeout`` is given)."""
        from ._overload import endpoint_batch, task_batch  # only batches need them

        window = make_window(concurrency, adaptive)
        await self._setup()
        if isinstance(task_timeout, _NotGiven):
            call, name = endpoint_batch(self, endpoint, adaptive)
        else:
            call, name = task_batch(self, endpoint, window, task_timeout)
        batch = run_batch(
            call,
            inputs,
            window=window,
            ordered=ordered,
            return_exceptions=return_exceptions,
            progress=progress,
            description=name,
        )
        async with aclosing(batch) as pairs:
            async for pair in pairs:
                yield pair

    # ----------------------------------------------------------------- readiness

    async def is_ready(self, timeout: float | None = None) -> bool:
        """Whether the server is ready now.

        Args:
            timeout: Seconds to wait for the answer (default 2).

        Returns:
            True when ``/readyz`` answers 200; False otherwise, never an error, also when
            nothing answers at all or the client is closed.
        """
        limit = PROBE_TIMEOUT if timeout is None else timeout
        try:
            return await probe(self._core.transport, self._core.readyz_url, limit)
        except Exception:  # the promise is a yes or a no, whatever goes wrong
            return False

    async def wait_until_server_ready(self, timeout: float | None = None) -> None:
        """Poll ``/readyz`` with backoff until it answers 200.

        Args:
            timeout: Seconds to wait at most (default: the client's call timeout).

        Raises:
            ReadinessTimeout: still not ready after ``timeout`` seconds (a
                ``ServiceUnavailable`` and a ``TimeoutError``).
        """
        limit = self._options.wait_limit if timeout is None else timeout
        await wait_until_ready(self._core.transport, self._core.readyz_url, limit)

    async def _fetch_schema(self) -> Any:
        """``/schema.json`` as the service serves it (not parsed); also the CLI's ``generate``."""
        read = partial(self._exchange, "GET", self._core.schema_url, read_json)
        return await fetch_schema(read, redact_url(self._core.url))

    async def _schema_document(self) -> Any:
        core = self._core
        where = redact_url(core.url)
        return await schema_document(
            self._fetch_schema, self._embedded_schema, core.check_schema, where
        )

    # ----------------------------------------------------------------- requests

    def _open(
        self,
        verb: str,
        url: URL,
        *,
        stream: bool = False,
        resend_safe: bool = True,
        body: Body | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Awaitable[aiohttp.ClientResponse]:
        """Send a request under the retry policy; gives a 2xx response with headers read.

        Error statuses raise their typed exception. The caller must ``finish`` the response.
        (A plain function returning what to await: one coroutine less per call.)
        """
        transport = self._core.transport
        options = self._options
        timeout = options.stream_timeout if stream else options.call_timeout
        start_within = options.timeout.total if stream else None  # a stream's answer must start
        headers = request_headers(options.headers, None if body is None else body.headers)
        # A partial, not a closure: two small objects per call rather than ten (a function
        # and a cell per variable), which the garbage collector walks while calls are in flight.
        attempt = partial(
            attempt_once, transport, verb, url, timeout, body, headers, params, start_within
        )
        policy = options.retry if body is None or body.rewindable else None
        return run_attempts(self._core, verb, url, params, policy, resend_safe, attempt)

    async def _exchange(
        self,
        verb: str,
        url: URL,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        body: Body | None = None,
        params: Mapping[str, str] | None = None,
        resend_safe: bool = True,
    ) -> T:
        response = await self._open(verb, url, body=body, params=params, resend_safe=resend_safe)
        transport = self._core.transport
        try:
            return await handle(response)
        except TRANSPORT_FAILURES as exc:
            raise_named(translate_error(exc, answer_started=True), response.headers, exc)
        except BentoMLException as exc:  # a broken 2xx answer is still the server's answer
            raise_named(exc, response.headers)
        finally:
            transport.finish(response)

    def _output_reader(self, endpoint: Endpoint) -> Reader:
        return partial(self._core.read_output, endpoint)

    async def _call(self, method: AsyncEndpointMethod, bound: Any) -> Any:
        body = await build_body(method.endpoint, bound)
        reader = partial(self._core.read_output, method.endpoint)
        return await self._exchange("POST", method.url, reader, body=body)

    def _stream(self, method: AsyncEndpointMethod, bound: Any) -> AsyncGenerator[Any, None]:
        async def opening() -> aiohttp.ClientResponse:
            body = await build_body(method.endpoint, bound)
            return await self._open("POST", method.url, body=body, stream=True)

        text = method.endpoint.output is not OutputKind.BYTES
        return stream_items(opening, self._core.transport, text=text)
