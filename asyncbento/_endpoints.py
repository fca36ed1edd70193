"""The endpoint registry: every way of naming an endpoint ends here.

- :class:`AsyncEndpointMethod`: one service endpoint bound to one client (or view).
- :func:`make_methods`: a client's name → endpoint-method table, built once per set-up.
- :func:`attribute_names` / :func:`bind_attributes`: the one clash-naming rule, used by both
  clients: an endpoint is ``client.<name>`` unless that name is the client's own or private;
  then it is ``client.api_<name>`` (prefixed again while that, too, is taken).
- :func:`resolve`: a name, an async or sync endpoint method, or a proxy taken before set-up,
  to this client's method; an unknown name raises :class:`~asyncbento.exceptions.EndpointNotFound`
  (a ``NotFound`` and an ``AttributeError``) with one message, whoever asked.
- :func:`resolve_after_setup`: the same, after the client's one awaited set-up.
- :class:`DeferredEndpoint` / :class:`DeferredCall`: what ``client.<name>`` and ``client.call``
  give before set-up (BentoML's documentation shows the async client used without
  ``async with``); awaiting or iterating one runs :func:`resolve_after_setup`, then the call.
- :func:`batch_call` / :func:`task_batch_call`: an endpoint method as the ``async (input) ->
  result`` callable that the batch engine (``_batch.py``) runs.
"""

from __future__ import annotations

import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Generator,
    Iterable,
    Mapping,
)
from typing import Any, Protocol

from yarl import URL

from ._pace import LearnedPace
from ._schema import Endpoint
from ._streaming import ServerSentEvent, sse_events
from ._tasks import TASK_OPERATIONS, TaskClient, TaskOperations
from .exceptions import ArgumentError, EndpointNotFound

CLASH_PREFIX = "api_"
Call = Callable[[Any], Awaitable[Any]]


class EndpointClient(TaskClient, Protocol):
    """What the registry needs of a client (``AsyncHTTPClient`` provides it)."""

    @property
    def _core(self) -> object: ...

    async def _setup(self) -> None: ...

    def _bound_methods(self) -> dict[str, AsyncEndpointMethod]: ...

    def _call(self, method: AsyncEndpointMethod, bound: Any) -> Awaitable[Any]: ...

    def _stream(self, method: AsyncEndpointMethod, bound: Any) -> AsyncGenerator[Any, None]: ...


class AsyncEndpointMethod(TaskOperations):
    """A service endpoint bound to a client: call it with the endpoint's own arguments.

    Stream endpoints return an async generator; others return a coroutine. Task endpoints
    also have ``submit``, ``get_status``, ``get``, ``cancel`` and ``retry``.
    """

    _client: EndpointClient

    def __init__(self, client: EndpointClient, endpoint: Endpoint, url: URL) -> None:
        self._client = client
        self.endpoint = endpoint
        self.url = url
        self.__name__ = endpoint.name
        self.__qualname__ = f"{type(client).__name__}.{endpoint.name}"
        self.__signature__ = endpoint.signature
        kind = "stream" if endpoint.is_stream else "task" if endpoint.is_task else "endpoint"
        self.__doc__ = f"Call the {endpoint.name!r} {kind} of the service (POST {endpoint.route})."
        self._task_urls = (
            {op: URL(f"{url}/{op}") for op in TASK_OPERATIONS} if endpoint.is_task else {}
        )

    def __repr__(self) -> str:
        return f"<endpoint {self.__name__}{self.endpoint.signature}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.endpoint.bind(args, kwargs)
        if self.endpoint.is_stream:
            return self._client._stream(self, bound)
        return self._client._call(self, bound)

    def events(self, *args: Any, **kwargs: Any) -> AsyncIterator[ServerSentEvent]:
        """Call a stream endpoint that sends real Server-Sent Events, yielding parsed events.

        Stops at a ``data: [DONE]`` sentinel (OpenAI style) or at the end of the stream.
        """
        if not self.endpoint.is_stream:
            raise TypeError(f"{self.__name__} is not a stream endpoint")
        return sse_events(self._client._stream(self, self.endpoint.bind(args, kwargs)))


# ----------------------------------------------------------------------------- the table


def make_methods(
    client: EndpointClient, endpoints: Mapping[str, Endpoint], url_of: Callable[[str], URL]
) -> dict[str, AsyncEndpointMethod]:
    """One endpoint method per endpoint, by the endpoint's name in the service."""
    return {
        name: AsyncEndpointMethod(client, endpoint, url_of(endpoint.route))
        for name, endpoint in endpoints.items()
    }


def attribute_names(names: Iterable[str], reserved: Collection[str]) -> dict[str, str]:
    """The attribute each endpoint is bound to: the one clash-naming rule of both clients.

    An endpoint keeps its name unless the name is in ``reserved`` (the client's own attributes)
    or private (leading ``_``); then it gets ``api_<name>``, prefixed again while that is
    reserved or another endpoint's own name. ``__call__`` is served by ``client(...)`` itself.
    """
    wanted = [name for name in names if name != "__call__"]

    def clashes(attribute: str) -> bool:
        return attribute.startswith("_") or attribute in reserved

    taken = {name for name in wanted if not clashes(name)}
    attributes: dict[str, str] = {}
    for name in wanted:
        attribute = name
        if clashes(name):
            attribute = CLASH_PREFIX + name
            while attribute in taken or attribute in reserved:
                attribute = CLASH_PREFIX + attribute
            taken.add(attribute)
        attributes[name] = attribute
    return attributes


def bind_attributes(
    target: object,
    methods: Mapping[str, AsyncEndpointMethod],
    wrap: Callable[[AsyncEndpointMethod], object] | None = None,
) -> None:
    """Set every endpoint method on ``target`` (a client) under its :func:`attribute_names`."""
    for name, attribute in attribute_names(methods, set(dir(type(target)))).items():
        method = methods[name]
        setattr(target, attribute, method if wrap is None else wrap(method))


def endpoint_not_found(name: str, known: Collection[str]) -> EndpointNotFound:
    """The one error for an endpoint name the service does not have."""
    listed = ", ".join(sorted(known)) or "none"
    return EndpointNotFound(f"the service has no endpoint {name!r} (its endpoints: {listed})")


def resolve(client: EndpointClient, endpoint: object) -> AsyncEndpointMethod:
    """This client's method for an endpoint name or method (the client must be set up).

    Accepts a name, an async endpoint method, a sync one (which wraps an async one) or a
    :class:`DeferredEndpoint`. A method of this client or of another view of it is swapped for
    this client's own, so that ``view.map(client.add, ...)`` runs with the view's options.

    Raises:
        EndpointNotFound: no endpoint of that name (also a ``NotFound`` and an AttributeError).
        TypeError: ``endpoint`` is neither a name nor an endpoint method.
    """
    methods = client._bound_methods()
    if isinstance(endpoint, DeferredEndpoint):  # taken before set-up: the name is what counts
        endpoint = endpoint.__name__
    if isinstance(endpoint, str):
        found = methods.get(endpoint)
        if found is None:
            raise endpoint_not_found(endpoint, methods)
        return found
    method = getattr(endpoint, "_async", endpoint)  # a SyncEndpointMethod wraps the async one
    if not isinstance(method, AsyncEndpointMethod):
        raise TypeError(f"endpoint must be an endpoint name or method, not {endpoint!r}")
    if method._client._core is client._core:
        return methods.get(method.__name__, method)
    return method


async def resolve_after_setup(client: EndpointClient, endpoint: object) -> AsyncEndpointMethod:
    """:func:`resolve`, after the client's set-up (done once, shared by every caller)."""
    await client._setup()
    return resolve(client, endpoint)


# ----------------------------------------------------------------------------- before set-up


class NotAnEndpoint:
    """What a generated (typed) client's unknown attribute is to a type checker: nothing to
    call, await or submit, so that a misspelt endpoint name is a type error (``"NotAnEndpoint"
    not callable``) rather than ``Any``. Never made at run time, where such a name raises
    :class:`~asyncbento.exceptions.EndpointNotFound`."""

    __slots__ = ()


class DeferredEndpoint:
    """An endpoint asked for by name before the client was set up."""

    __slots__ = ("__name__", "_client")

    def __init__(self, client: EndpointClient, name: str) -> None:
        self._client, self.__name__ = client, name

    def __call__(self, *args: Any, **kwargs: Any) -> DeferredCall:
        return DeferredCall(self._client, self.__name__, None, args, kwargs)

    def __repr__(self) -> str:
        return f"<endpoint {self.__name__} (the client is not set up yet)>"

    def events(self, *args: Any, **kwargs: Any) -> DeferredCall:
        """Server-Sent Events of a stream endpoint (see ``AsyncEndpointMethod.events``)."""
        return DeferredCall(self._client, self.__name__, "events", args, kwargs)

    def __getattr__(self, name: str) -> Any:
        # submit / get_status / get / cancel / retry: the real method's, once set up.
        if name not in _TASK_METHODS:
            raise AttributeError(name)

        async def deferred(*args: Any, **kwargs: Any) -> Any:
            method = await resolve_after_setup(self._client, self.__name__)
            return await getattr(method, name)(*args, **kwargs)

        deferred.__name__ = name
        return deferred


_TASK_METHODS = frozenset({"submit", "get_status", "get", "cancel", "retry"})


class DeferredCall:
    """A call made before set-up: await it, or ``async for`` over a stream."""

    __slots__ = ("_args", "_client", "_kwargs", "_name", "_operation")

    def __init__(
        self,
        client: EndpointClient,
        name: str,
        operation: str | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._client = client
        self._name = name
        self._operation = operation
        self._args = args
        self._kwargs = kwargs

    async def _start(self) -> Any:
        method = await resolve_after_setup(self._client, self._name)
        target = method if self._operation is None else getattr(method, self._operation)
        return target(*self._args, **self._kwargs)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        result = await self._start()
        if inspect.isawaitable(result):
            return await result
        await _close(result)
        raise TypeError(f"{self._name} is a stream endpoint: iterate it with `async for`")

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncGenerator[Any, None]:
        stream = await self._start()
        if inspect.isawaitable(stream):
            if inspect.iscoroutine(stream):
                stream.close()
            raise TypeError(f"{self._name} is not a stream endpoint: `await` it")
        try:
            async for item in stream:
                yield item
        finally:
            await _close(stream)


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


# ----------------------------------------------------------------------------- batch adapters


def batch_arguments(method: AsyncEndpointMethod) -> Callable[[Any], tuple[tuple[Any, ...], Any]]:
    """How one batch input becomes call arguments: ``(args, kwargs)``."""
    name = method.__name__
    if method.endpoint.root is not None:
        return lambda item: ((item,), {})

    def split(item: Any) -> tuple[tuple[Any, ...], Any]:
        if type(item) is dict or isinstance(item, Mapping):
            return (), item
        raise ArgumentError(
            f"{name}() batch inputs must be dicts of arguments, not {type(item).__qualname__}"
        )

    return split


def batch_call(method: AsyncEndpointMethod) -> Call:
    """Call ``method`` with one batch input (a stream's chunks are joined into one result)."""
    split = batch_arguments(method)
    is_stream = method.endpoint.is_stream

    async def call(item: Any) -> Any:
        args, kwargs = split(item)
        result = method(*args, **kwargs)  # wrong arguments: ArgumentError, this input's
        if is_stream:
            return _join([chunk async for chunk in result])
        return await result

    return call


def task_batch_call(method: AsyncEndpointMethod, timeout: float | None) -> Call:
    """Submit one batch input as a task and wait for its output.

    The batch's tasks share one :class:`LearnedPace`, which learns when they finish.

    Raises:
        TypeError: ``method`` is not a task endpoint (raised at once, before any input).
    """
    if not method.endpoint.is_task:
        raise TypeError(f"{method.__name__} is not a task endpoint")
    split = batch_arguments(method)
    pace = LearnedPace(wait_out_refusals=False)

    async def call(item: Any) -> Any:
        args, kwargs = split(item)
        task = await method.submit(*args, **kwargs)
        return await task._wait(timeout, pace)

    return call


def _join(chunks: list[Any]) -> Any:
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, bytes) for c in chunks):
        return b"".join(chunks)
    return chunks
