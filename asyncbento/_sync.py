"""SyncHTTPClient: a thin blocking facade over AsyncHTTPClient.

Nothing here sends a request or decodes an answer. Every method hands the async client's own
coroutine to the process-wide portal (``_portal.py``) and waits; streams cross the thread one
item at a time; async task handles come back wrapped as :class:`Task`. Endpoint methods are
made by one generic wrapper, :class:`SyncEndpointMethod`.
"""

from __future__ import annotations

import atexit
import inspect
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._client import AsyncEndpointMethod, AsyncHTTPClient
from ._config import NOT_GIVEN, RetryPolicy, TimeoutLike, _NotGiven
from ._portal import get_portal, on_fork_in_child
from ._response import Response
from ._schema import Endpoint
from ._tasks import AsyncTask, ResultStatus
from ._transport import Transport

if TYPE_CHECKING:
    from ._batch import Inputs

_EXIT_CLOSE_TIMEOUT = 5.0

# Live sync clients (not views), for closing at exit and resetting after fork.
_live: weakref.WeakSet[SyncHTTPClient] = weakref.WeakSet()


def _blocking(value: Any) -> Any:
    """Run what an async method returned: await a coroutine, bridge an async generator."""
    portal = get_portal()
    if inspect.iscoroutine(value):
        return _wrap(portal.call(value))
    if inspect.isasyncgen(value):
        return portal.iterate(value)
    return _wrap(value)


def _wrap(value: Any) -> Any:
    return Task(value) if isinstance(value, AsyncTask) else value


class Task:
    """A submitted task (the sync twin of :class:`asyncbento.AsyncTask`)."""

    __slots__ = ("_task",)

    def __init__(self, task: AsyncTask) -> None:
        self._task = task

    @property
    def id(self) -> str:
        """The server's task id."""
        return self._task.id

    def __repr__(self) -> str:
        return repr(self._task).replace("AsyncTask", "Task", 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def get_status(self) -> ResultStatus:
        """The task's current status."""
        return _blocking(self._task.get_status())  # type: ignore[no-any-return]

    def get(self) -> Any:
        """The task's output, decoded as a direct call's would be.

        Raises:
            TaskNotCompleted: the task has not finished yet.
            BentoMLException: the task failed (its own error, typed by status).
        """
        return _blocking(self._task.get())

    def cancel(self) -> None:
        """Ask the server to cancel the task.

        Raises:
            TaskCancelNotSupported: the server cannot cancel tasks (BentoML's local server).
        """
        _blocking(self._task.cancel())

    def retry(self) -> Task:
        """Run the task's stored input again, as a new task."""
        return _blocking(self._task.retry())  # type: ignore[no-any-return]

    def wait(self, timeout: float | None = None) -> Any:
        """Wait until the task finishes and return its output (same as :meth:`result`).

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Raises:
            TaskTimeout: the task did not finish in time (also a ``TimeoutError``).
            BentoMLException: the task failed, with its own error.
        """
        return _blocking(self._task.wait(timeout))

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the task finishes and return its output, or raise its error."""
        return _blocking(self._task.result(timeout))


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
        return _blocking(self._async(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        # submit / get_status / get / cancel / retry / events: the async method, made blocking.
        attribute = getattr(self._async, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return _blocking(attribute(*args, **kwargs))

        blocking.__name__ = name
        blocking.__doc__ = attribute.__doc__
        return blocking


def _unwrap(endpoint: str | SyncEndpointMethod) -> str | AsyncEndpointMethod:
    return endpoint._async if isinstance(endpoint, SyncEndpointMethod) else endpoint


def _close_transport(transport: Transport) -> None:
    """Finaliser for a sync client dropped without ``close()``."""
    if not transport.closed:
        get_portal().spawn(transport.close())


class SyncHTTPClient:
    """A blocking client for a BentoML service; a drop-in for ``bentoml.SyncHTTPClient``.

    Usable at once (no ``with`` needed): the constructor waits for the server and reads its
    schema. It takes exactly the options of :class:`asyncbento.AsyncHTTPClient`, runs the same
    code on a background event loop, and works in scripts, threads and Jupyter alike.

    Args:
        url: The service's address (``http(s)://host:port``, ``host:port`` or a Unix socket).
        **options: ``token``, ``timeout``, ``server_ready_timeout``, ``retry``, ``limits``,
            ``verify``, ``trust_env``, ``download_dir``: as for ``AsyncHTTPClient``.

    Raises:
        ServiceUnavailable: the server was not ready within ``server_ready_timeout``.
        BentoMLException: ``/schema.json`` could not be read (typed by status).
        ValueError: a malformed URL or option.
    """

    _async: AsyncHTTPClient

    def __init__(self, url: str, **options: Any) -> None:
        client = AsyncHTTPClient(url, **options)
        self._async = client
        self._finalizer = weakref.finalize(self, _close_transport, client._core.transport)
        # At exit, _close_all_at_exit closes every client in one pass on the calling thread;
        # a finaliser run then would need a new thread, which Python 3.12+ refuses at shutdown.
        self._finalizer.atexit = False
        _live.add(self)
        try:
            _blocking(client._setup())
        except BaseException:
            self.close()
            raise
        self._bind_methods()

    def _bind_methods(self) -> None:
        for name, method in self._async._methods.items():
            if name != "__call__":
                attribute = f"api_{name}" if hasattr(type(self), name) else name
                setattr(self, attribute, SyncEndpointMethod(method))

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncHTTPClient", "SyncHTTPClient", 1)

    def __enter__(self) -> SyncHTTPClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections. Safe to call twice; downloaded files are kept."""
        if not self._async.closed:
            _blocking(self._async.close())

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

    def is_ready(self, timeout: float | None = None) -> bool:
        """Whether ``/readyz`` answers 200 now; False when nothing answers.

        Args:
            timeout: Seconds to wait for the answer (default: the client's timeout).
        """
        return _blocking(self._async.is_ready(timeout))  # type: ignore[no-any-return]

    def wait_until_server_ready(self, timeout: float | None = None) -> None:
        """Poll ``/readyz`` with backoff until it answers 200.

        Args:
            timeout: Seconds to keep polling (default: ``server_ready_timeout``).

        Raises:
            ServiceUnavailable: not ready after ``timeout`` seconds.
        """
        _blocking(self._async.wait_until_server_ready(timeout))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the service's ``__call__`` endpoint, if it has one."""
        return _blocking(self._async(*args, **kwargs))

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call an endpoint by name, with its own arguments.

        Raises:
            NotFound: no endpoint of that name (nothing is sent).
            TypeError: an unknown, missing or duplicate argument (nothing is sent).
        """
        return _blocking(self._async.call(name, *args, **kwargs))

    def request(self, method: str, url: str, **options: Any) -> Response:
        """Send a request to any route of the service; as ``AsyncHTTPClient.request``."""
        return _blocking(self._async.request(method, url, **options))  # type: ignore[no-any-return]

    def map(
        self,
        endpoint: str | SyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        return_exceptions: bool = False,
        progress: bool = False,
    ) -> list[Any]:
        """Call ``endpoint`` once per input, ``concurrency`` at a time; results in input order.

        Args:
            endpoint: An endpoint name or method; a root-input endpoint takes each input as
                its value, any other a dict of arguments per input.
            inputs: An iterable (or async iterable), pulled lazily.
            concurrency: Calls in flight at once.
            return_exceptions: Put a failed input's exception in its place in the results;
                otherwise the first failure is raised and the calls in flight are cancelled.
            progress: Show a tqdm progress bar (``pip install 'asyncbento[progress]'``).

        Returns:
            One result (or exception) per input, in input order.
        """
        return _blocking(  # type: ignore[no-any-return]
            self._async.map(
                _unwrap(endpoint),
                inputs,
                concurrency=concurrency,
                return_exceptions=return_exceptions,
                progress=progress,
            )
        )

    def imap(
        self,
        endpoint: str | SyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        ordered: bool = False,
        return_exceptions: bool = False,
        progress: bool = False,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` pairs as calls finish (in input order if ``ordered``).

        Memory stays flat for any number of inputs; leaving the loop early stops the batch.
        Arguments as for :meth:`map`.
        """
        return _blocking(  # type: ignore[no-any-return]
            self._async.imap(
                _unwrap(endpoint),
                inputs,
                concurrency=concurrency,
                ordered=ordered,
                return_exceptions=return_exceptions,
                progress=progress,
            )
        )

    def map_tasks(
        self,
        endpoint: str | SyncEndpointMethod,
        inputs: Inputs,
        *,
        concurrency: int = 64,
        return_exceptions: bool = False,
        progress: bool = False,
        timeout: float | None = None,
    ) -> list[Any]:
        """Submit every input to a task endpoint and collect the results in input order.

        Arguments as for :meth:`map`, plus ``timeout``: seconds to wait for each task's result.

        Raises:
            TypeError: ``endpoint`` is not a task endpoint (before anything is sent).
        """
        return _blocking(  # type: ignore[no-any-return]
            self._async.map_tasks(
                _unwrap(endpoint),
                inputs,
                concurrency=concurrency,
                return_exceptions=return_exceptions,
                progress=progress,
                timeout=timeout,
            )
        )

    def with_options(
        self,
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        retry: RetryPolicy | None | _NotGiven = NOT_GIVEN,
    ) -> SyncHTTPClient:
        """A light view with other call options, sharing this client's connections.

        Args:
            timeout: Seconds (or a ``Timeout``) for each call made through the view.
            retry: A ``RetryPolicy``, or None for no retries.
        """
        view = object.__new__(type(self))
        view._async = self._async.with_options(timeout=timeout, retry=retry)
        view._bind_methods()
        return view


SyncHTTPClient.__init__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    AsyncHTTPClient.__init__
)
SyncHTTPClient.request.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    AsyncHTTPClient.request
)


def _reset_after_fork() -> None:
    # The child's portal has a new loop, so each transport makes itself a new session on first
    # use (Transport.start notices the change of loop); only the set-up lock is reset here.
    for client in list(_live):
        client._async._core.setup_lock = None


def _close_all_at_exit() -> None:
    clients = [c for c in list(_live) if not c._async.closed]
    if not clients:
        return

    async def close_all() -> None:
        for client in clients:
            await client._async.close()

    get_portal().call_with_timeout(close_all(), _EXIT_CLOSE_TIMEOUT)


on_fork_in_child(_reset_after_fork)
atexit.register(_close_all_at_exit)
