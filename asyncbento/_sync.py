"""SyncHTTPClient: a blocking facade generated from AsyncHTTPClient.

Nothing here sends a request or decodes an answer. One generic wrapper, :func:`blocking`,
turns an async method into a blocking one with the same parameters, defaults and docstring:
it calls the async original and hands what comes back to the process-wide portal
(``_portal.py``), whose own thread runs the loop. A coroutine is awaited there; an async
iterator crosses the thread item by item (a stream read a bounded way ahead, so that a
burst of chunks costs one wake-up); an async object that comes back (an
``AsyncTask``, a client view) is wrapped in its sync facade. Each sync class declares its
methods as ``name = blocking(AsyncClass.name)``, so type checkers see the async method's
parameters with the blocking result type (a ``ParamSpec``), and a test checks that every
public async method has its counterpart.
"""

from __future__ import annotations

import inspect
import re
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    ParamSpec,
    TypeVar,
    cast,
    overload,
)

from ._client import AsyncHTTPClient
from ._endpoints import AsyncEndpointMethod, bind_attributes, resolve
from ._portal import get_portal, on_fork_in_child, on_shutdown
from ._schema import Endpoint
from ._streaming import ServerSentEvent
from ._tasks import AsyncTask
from ._transport import Transport

if TYPE_CHECKING:
    from typing_extensions import Self

P = ParamSpec("P")
T = TypeVar("T")

# Live sync clients (not views), for closing at exit and resetting after fork.
_live: weakref.WeakSet[SyncHTTPClient] = weakref.WeakSet()


# What a stream's generator may run ahead of a sync consumer: up to 1,024 chunks, and up to
# 256 KiB (characters, for text) of them. Chunks that arrive together cross the thread
# together, and a thread switch per few hundred small chunks costs little per chunk. Other
# iterators (imap) step only when asked, to stay lazy.
_STREAM_READ_AHEAD = 1024
_STREAM_READ_AHEAD_SIZE = 256 * 1024


def _bridge_stream(
    stream: AsyncIterator[T], client: AsyncHTTPClient, size_of: Callable[[T], int]
) -> Iterator[T]:
    """One of ``client``'s streams, read ahead on the loop (``size_of`` an item: its share of
    the size bound). Items read ahead are not handed out once the client is closed, as the
    async stream's next item would not be: the transport is the stream's cut."""
    return get_portal().iterate(
        stream, _STREAM_READ_AHEAD, client._core.transport, _STREAM_READ_AHEAD_SIZE, size_of
    )


def _event_size(event: ServerSentEvent) -> int:
    return len(event.data)


def _blocking(value: Any, owner: Any = None, stream_of: AsyncHTTPClient | None = None) -> Any:
    """Run what an async method returned: await a coroutine, bridge an async iterator.

    ``stream_of``: the client whose stream (of chunks) ``value`` may be, read ahead until it is
    closed; any other async iterator (``imap``) steps only when asked, to stay lazy.
    """
    if inspect.iscoroutine(value):
        value = get_portal().call(value)
    elif hasattr(value, "__anext__"):
        if stream_of is None:
            return get_portal().iterate(value)
        return _bridge_stream(value, stream_of, len)
    elif inspect.isawaitable(value):
        value = get_portal().call(value)
    facade = _FACADES.get(type(value))
    return value if facade is None else facade(value, owner)


_ASYNC_NAMES = re.compile(
    r"\b(AsyncIterator|AsyncGenerator|AsyncTask|AsyncHTTPClient|AsyncEndpointMethod)\b"
)
_SYNC_NAMES = {
    "AsyncIterator": "Iterator",
    "AsyncGenerator": "Generator",
    "AsyncTask": "Task",
    "AsyncHTTPClient": "SyncHTTPClient",
    "AsyncEndpointMethod": "SyncEndpointMethod",
}


def _sync_annotation(annotation: Any) -> Any:
    if not isinstance(annotation, str):
        return annotation
    return _ASYNC_NAMES.sub(lambda match: _SYNC_NAMES[match.group(1)], annotation)


def _sync_signature(original: Callable[..., Any]) -> inspect.Signature:
    """The async original's signature, with the sync facades' names in its annotations."""
    signature = inspect.signature(original)
    parameters = [
        parameter.replace(annotation=_sync_annotation(parameter.annotation))
        for parameter in signature.parameters.values()
    ]
    return signature.replace(
        parameters=parameters, return_annotation=_sync_annotation(signature.return_annotation)
    )


@overload
def blocking(
    original: Callable[Concatenate[Any, P], Coroutine[Any, Any, AsyncTask]],
) -> Callable[Concatenate[Any, P], Task]: ...
@overload
def blocking(
    original: Callable[Concatenate[Any, P], AsyncHTTPClient],
) -> Callable[Concatenate[Any, P], SyncHTTPClient]: ...
@overload
def blocking(
    original: Callable[Concatenate[Any, P], AsyncIterator[T]],
) -> Callable[Concatenate[Any, P], Iterator[T]]: ...
@overload
def blocking(
    original: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Any, P], T]: ...
@overload
def blocking(original: Callable[Concatenate[Any, P], T]) -> Callable[Concatenate[Any, P], T]: ...
def blocking(original: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking method made from an async one of the object's ``_async`` counterpart.

    The method has the original's name, parameters, defaults and docstring.
    """
    name = original.__name__

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A sync endpoint method passed on (``map(client.add, ...)``) is unwrapped by the
        # registry's resolve(), like any other way of naming an endpoint.
        return _blocking(getattr(self._async, name)(*args, **kwargs), self)

    return _dressed_as(method, original)


def blocking_stream(
    original: Callable[Concatenate[AsyncEndpointMethod, P], AsyncIterator[T]],
    size_of: Callable[[T], int],
) -> Callable[Concatenate[Any, P], Iterator[T]]:
    """A blocking method made from an async endpoint method that returns one of its client's
    streams: read ahead as a stream of chunks is, ``size_of`` giving each item's share of the
    size bound. Same name, parameters, defaults and docstring as the original."""
    name = original.__name__

    def method(self: SyncEndpointMethod, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        stream = getattr(self._async, name)(*args, **kwargs)
        return _bridge_stream(stream, cast(AsyncHTTPClient, self._async._client), size_of)

    return _dressed_as(method, original)


def _dressed_as(method: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    method.__name__ = original.__name__
    method.__qualname__ = _sync_annotation(original.__qualname__)
    method.__doc__ = original.__doc__
    method.__signature__ = _sync_signature(original)  # type: ignore[attr-defined]
    return method


class Task:
    """A submitted task (the sync facade of :class:`asyncbento.AsyncTask`)."""

    __slots__ = ("_async",)

    def __init__(self, task: AsyncTask) -> None:
        self._async = task

    @property
    def id(self) -> str:
        """The server's task id."""
        return self._async.id

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncTask", "Task", 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other._async == self._async

    def __hash__(self) -> int:
        return hash(self._async)

    get_status = blocking(AsyncTask.get_status)
    get = blocking(AsyncTask.get)
    cancel = blocking(AsyncTask.cancel)
    retry = blocking(AsyncTask.retry)
    wait = blocking(AsyncTask.wait)
    result = blocking(AsyncTask.result)


class SyncEndpointMethod:
    """A blocking endpoint method, made from the async client's one (same signature).

    Stream endpoints return a generator; task endpoints have ``submit`` and friends.
    """

    def __init__(self, method: AsyncEndpointMethod) -> None:
        self._async = method
        self.endpoint: Endpoint = method.endpoint
        self.__name__ = method.__name__
        self.__qualname__ = method.__qualname__.replace("AsyncHTTPClient", "SyncHTTPClient")
        self.__signature__ = method.__signature__
        self.__doc__ = method.__doc__

    def __repr__(self) -> str:
        return repr(self._async)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        client = cast(AsyncHTTPClient, self._async._client)
        return _blocking(self._async(*args, **kwargs), stream_of=client)

    events = blocking_stream(AsyncEndpointMethod.events, _event_size)
    submit = blocking(AsyncEndpointMethod.submit)
    get_status = blocking(AsyncEndpointMethod.get_status)
    get = blocking(AsyncEndpointMethod.get)
    cancel = blocking(AsyncEndpointMethod.cancel)
    retry = blocking(AsyncEndpointMethod.retry)


def _close_transport(transport: Transport) -> None:
    """Finaliser for a sync client dropped without ``close()``."""
    if not transport.closed:
        get_portal().spawn(transport.close())


class SyncHTTPClient:
    """A blocking client for a BentoML service; a drop-in for ``bentoml.SyncHTTPClient``.

    Usable at once (no ``with`` needed): the constructor waits for the server and reads its
    schema. It takes exactly the options of :class:`asyncbento.AsyncHTTPClient`, runs the same
    code on asyncbento's event-loop thread, and works in scripts, threads and Jupyter alike.

    Args:
        url: The service's address (``http(s)://host:port``, ``host:port`` or a Unix socket).
        **options: ``token``, ``timeout``, ``server_ready_timeout``, ``headers``, ``retry``,
            ``limits``, ``verify``, ``trust_env``, ``download_dir``, ``trace_configs``: as for
            ``AsyncHTTPClient``.

    Raises:
        ServiceUnavailable: the server was not ready within ``server_ready_timeout``.
        BentoMLException: ``/schema.json`` could not be read (typed by status).
        ValueError: a malformed URL or option.
    """

    _async: AsyncHTTPClient
    # What a generated sync client runs underneath: its generated async client.
    _async_class: ClassVar[type[AsyncHTTPClient]] = AsyncHTTPClient

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A view of a generated async client comes back through the same facade.
        _FACADES.setdefault(cls._async_class, _FACADES[AsyncHTTPClient])

    def __init__(self, url: str, **options: Any) -> None:
        client = self._async_class(url, **options)
        self._async = client
        self._finalizer = weakref.finalize(self, _close_transport, client._core.transport)
        # At exit the portal's shutdown closes every client on the loop; a finaliser run then
        # would have nothing left to do.
        self._finalizer.atexit = False
        _live.add(self)
        try:
            _blocking(client._setup())
        except BaseException:
            self.close()
            raise
        self._bind_methods()

    @classmethod
    def _view(cls, client: AsyncHTTPClient) -> SyncHTTPClient:
        """A facade of ``client`` (a view made by ``with_options``), not closed at exit."""
        view = object.__new__(cls)
        view._async = client
        view._bind_methods()
        return view

    def _bind_methods(self) -> None:
        bind_attributes(self, self._async._bound_methods(), SyncEndpointMethod)

    def __getattr__(self, name: str) -> Any:
        # Endpoint methods are set per instance from the service's schema; this is only
        # reached for a name that is neither the client's nor an endpoint's.
        if name.startswith("_"):
            raise AttributeError(name)
        return resolve(self._async, name)  # EndpointNotFound, also an AttributeError

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncHTTPClient", "SyncHTTPClient", 1)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # A closed client makes no call: nothing waits on a loop that may have stopped (exit).
        if not self._async.closed:
            _blocking(self._async.close())

    close.__doc__ = AsyncHTTPClient.close.__doc__

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._async.closed

    @property
    def url(self) -> str:
        """The URL this client was made with."""
        return self._async.url

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        """The service's endpoints by name."""
        return self._async.endpoints

    @property
    def service_name(self) -> str:
        """The service's name from ``/schema.json``."""
        return self._async.service_name

    is_ready = blocking(AsyncHTTPClient.is_ready)
    wait_until_server_ready = blocking(AsyncHTTPClient.wait_until_server_ready)
    __call__ = blocking(AsyncHTTPClient.__call__)
    call = blocking(AsyncHTTPClient.call)
    request = blocking(AsyncHTTPClient.request)
    map = blocking(AsyncHTTPClient.map)
    imap = blocking(AsyncHTTPClient.imap)
    map_tasks = blocking(AsyncHTTPClient.map_tasks)
    with_options = blocking(AsyncHTTPClient.with_options)


SyncHTTPClient.__init__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    AsyncHTTPClient.__init__
)

# What an async method's result becomes on the sync side, by its type.
_FACADES: dict[type, Callable[[Any, Any], Any]] = {
    AsyncTask: lambda task, owner: Task(task),
    AsyncHTTPClient: lambda client, owner: type(owner)._view(client),
}


def _reset_after_fork() -> None:
    # The child's portal has a new loop, so each transport makes itself a new session on first
    # use (Transport.start notices the change of loop); only the set-up lock is reset here.
    for client in list(_live):
        client._async._core.setup_lock = None


async def _close_all() -> None:
    """At interpreter exit, on the loop: close every sync client left open."""
    for client in list(_live):
        if not client._async.closed:
            await client._async.close()


on_fork_in_child(_reset_after_fork)
on_shutdown(_close_all)
