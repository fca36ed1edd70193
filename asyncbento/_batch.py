"""Bounded-concurrency batch calls: the engine behind ``map``, ``imap`` and ``map_tasks``.

One engine, :func:`run_batch`. A fixed pool of ``concurrency`` worker tasks (never one task per
input) pulls inputs lazily from a sync or async iterable and calls the endpoint. A window bounds
how many inputs are pulled but not yet handed to the consumer (``concurrency`` unordered; twice
that when ordered, the extra being the reorder buffer), so memory stays flat for any number of
inputs and a consumer that stops early stops the pulling too. Every pulled input ends as a result
or as an error at its index: nothing is dropped.

The hand-off between workers and consumer uses a deque and bare futures rather than
``asyncio.Queue`` / ``Semaphore``: per input that is about a third of the overhead, which matters
when a batch is millions of small calls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sized,
)
from typing import TYPE_CHECKING, Any, Union

from ._deferred import DeferredEndpoint
from .exceptions import ArgumentError, NotFound

if TYPE_CHECKING:
    from ._client import AsyncEndpointMethod, AsyncHTTPClient

Inputs = Union[Iterable[Any], AsyncIterable[Any]]  # noqa: UP007 - a runtime alias on 3.10
Call = Callable[[Any], Awaitable[Any]]

_END: Any = object()  # what a source returns once it is exhausted


# ----------------------------------------------------------------------------- endpoints


def resolve_endpoint(client: AsyncHTTPClient, endpoint: Any) -> AsyncEndpointMethod:
    """The async method for an endpoint name, an async endpoint method or a sync one.

    A method of this client (or of another view of it) is swapped for this client's own, so
    that ``view.map(client.add, ...)`` runs with the view's timeout and retry options.

    Raises:
        NotFound: no endpoint of that name.
        TypeError: ``endpoint`` is neither a name nor an endpoint method.
    """
    from ._client import AsyncEndpointMethod

    client._require_setup()
    if not client._methods:
        client._bind_methods()
    methods = client._methods
    if isinstance(endpoint, DeferredEndpoint):  # taken before set-up: the name is what counts
        endpoint = endpoint.__name__
    if isinstance(endpoint, str):
        method = methods.get(endpoint)
        if method is None:
            raise NotFound(f"endpoint {endpoint!r} not found in the service")
        return method
    method = getattr(endpoint, "_async", endpoint)  # a SyncEndpointMethod wraps the async one
    if not isinstance(method, AsyncEndpointMethod):
        raise TypeError(f"endpoint must be an endpoint name or method, not {endpoint!r}")
    if method._client._core is client._core:
        return methods.get(method.__name__, method)
    return method


def _arguments(method: AsyncEndpointMethod) -> Callable[[Any], tuple[tuple[Any, ...], Any]]:
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


def endpoint_call(method: AsyncEndpointMethod) -> Call:
    """Call ``method`` with one batch input (a stream's chunks are joined into one result)."""
    split = _arguments(method)
    is_stream = method.endpoint.is_stream

    async def call(item: Any) -> Any:
        args, kwargs = split(item)
        result = method(*args, **kwargs)  # wrong arguments: ArgumentError, this input's
        if is_stream:
            return _join([chunk async for chunk in result])
        return await result

    return call


def task_call(method: AsyncEndpointMethod, timeout: float | None) -> Call:
    """Submit one batch input as a task and wait for its output.

    Raises:
        TypeError: ``method`` is not a task endpoint (raised at once, before any input).
    """
    if not method.endpoint.is_task:
        raise TypeError(f"{method.__name__} is not a task endpoint")
    split = _arguments(method)

    async def call(item: Any) -> Any:
        args, kwargs = split(item)
        task = await method.submit(*args, **kwargs)
        return await task.result(timeout)

    return call


def _join(chunks: list[Any]) -> Any:
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, bytes) for c in chunks):
        return b"".join(chunks)
    return chunks


# ----------------------------------------------------------------------------- progress


class _Progress:
    """A tqdm bar with an error count; tqdm is imported only when a bar is asked for."""

    __slots__ = ("_bar", "errors")

    def __init__(self, total: int | None, description: str) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as error:
            raise ImportError(
                "progress=True needs tqdm, which is not installed: "
                "pip install 'asyncbento[progress]'"
            ) from error
        self.errors = 0
        self._bar = tqdm(total=total, desc=description, unit="call", dynamic_ncols=True)

    def update(self, failed: bool) -> None:
        # tqdm.update is itself a counter until its refresh interval is due.
        if failed:
            self.errors += 1
            self._bar.set_postfix(errors=self.errors, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


# ----------------------------------------------------------------------------- engine


def _check_inputs(inputs: Any) -> None:
    # One dict or string passed where many inputs were meant would "work" key by key (or
    # character by character) and fail every input in a puzzling way: refuse it outright.
    if isinstance(inputs, (str, bytes, bytearray, Mapping)):
        raise TypeError(
            f"inputs must be an iterable of inputs, not a single {type(inputs).__qualname__}; "
            "wrap one input in a list"
        )
    if not isinstance(inputs, (Iterable, AsyncIterable)):
        raise TypeError(f"inputs must be an iterable or async iterable, not {inputs!r}")


def _note(error: BaseException, index: int) -> BaseException:
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"(raised for batch input #{index})")
    return error


async def run_batch(
    call: Call,
    inputs: Inputs,
    *,
    concurrency: int = 64,
    ordered: bool = False,
    return_exceptions: bool = False,
    progress: bool = False,
    description: str = "asyncbento",
    total: int | None = None,
) -> AsyncGenerator[tuple[int, Any], None]:
    """Yield ``(index, result)`` for every input, as calls finish or in input order.

    Args:
        call: What to do with one input.
        inputs: A sync or async iterable, pulled lazily (never listed).
        concurrency: Calls in flight at once (the number of worker tasks).
        ordered: Yield in input order, buffering at most ``concurrency`` early results.
        return_exceptions: Yield a failed input's exception as its result; otherwise the first
            failure is raised and the calls in flight are cancelled.
        progress: Show a tqdm progress bar.
        description: The bar's label.
        total: Number of inputs for the bar's ETA (default: ``len(inputs)`` if it has one).

    Raises:
        ValueError: ``concurrency`` is below 1.
        TypeError: ``inputs`` is not an iterable of inputs.
        ImportError: ``progress=True`` without tqdm installed.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    _check_inputs(inputs)
    if total is None and isinstance(inputs, Sized):
        total = len(inputs)
    bar = _Progress(total, description) if progress else None
    loop = asyncio.get_running_loop()

    sync_source: Any = None
    async_source: Any = None
    pull_lock: asyncio.Lock | None = None
    if isinstance(inputs, AsyncIterable):
        async_source = aiter(inputs)
        pull_lock = asyncio.Lock()  # an async iterator must not be entered twice at once
    else:
        sync_source = iter(inputs)

    # Window: inputs pulled but not yet handed to the consumer. A worker needs a slot to pull;
    # the consumer frees one per result it hands out, passing it straight to a waiting worker.
    window = 2 * concurrency if ordered else concurrency
    outstanding = 0
    slot_waiters: deque[asyncio.Future[bool]] = deque()
    exhausted = False

    finished: deque[tuple[int, Any, BaseException | None]] = deque()
    consumer: asyncio.Future[None] | None = None
    live = 0  # workers still running
    fatal: BaseException | None = None  # the inputs iterable itself failed
    closing = False
    next_index = 0

    def wake_consumer() -> None:
        nonlocal consumer
        if consumer is not None:
            waiter, consumer = consumer, None
            if not waiter.done():
                waiter.set_result(None)

    def free_slot() -> None:
        nonlocal outstanding
        while slot_waiters:
            waiter = slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot passes to this worker
                return
        outstanding -= 1

    def end_of_inputs() -> None:
        nonlocal exhausted, outstanding
        outstanding -= 1  # the slot taken for the pull that found the end
        if not exhausted:
            exhausted = True
            while slot_waiters:  # no slot for them: they stop
                waiter = slot_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(False)

    async def worker() -> None:
        nonlocal outstanding, next_index, live, fatal
        try:
            while not exhausted:
                if outstanding < window:
                    outstanding += 1
                else:
                    waiter: asyncio.Future[bool] = loop.create_future()
                    slot_waiters.append(waiter)
                    if not await waiter:
                        return  # the inputs ran out while this worker waited
                if pull_lock is None:
                    item = next(sync_source, _END)
                else:
                    async with pull_lock:
                        item = _END if exhausted else await anext(async_source, _END)
                if item is _END:
                    end_of_inputs()
                    return
                index = next_index
                next_index += 1
                try:
                    finished.append((index, await call(item), None))
                except Exception as error:  # every input ends as a result or an error
                    finished.append((index, None, error))
                wake_consumer()
        except asyncio.CancelledError as error:
            if not closing and fatal is None:
                # Not our cancellation: something inside a call cancelled it; losing that
                # input silently would break the promise that every input is accounted for.
                fatal = RuntimeError("a batch call was cancelled from within")
                fatal.__cause__ = error
            raise
        except BaseException as error:
            if fatal is None:
                fatal = error  # the inputs iterable raised: a batch cannot go on without it
            raise
        finally:
            live -= 1
            wake_consumer()

    count = concurrency if total is None else max(1, min(concurrency, total))
    live = count
    workers = [loop.create_task(worker()) for _ in range(count)]
    early: dict[int, tuple[Any, BaseException | None]] = {}  # ordered mode's reorder buffer
    next_out = 0
    try:
        while True:
            if fatal is not None:
                raise fatal
            if not finished:
                if live == 0:
                    break
                consumer = loop.create_future()
                await consumer
                continue
            index, value, error = finished.popleft()
            if bar is not None:
                bar.update(error is not None)
            if error is not None and not return_exceptions:
                raise _note(error, index)
            if not ordered:
                free_slot()
                yield index, (value if error is None else error)
                continue
            if index != next_out:
                early[index] = (value, error)
                continue
            while True:
                free_slot()
                yield index, (value if error is None else error)
                next_out += 1
                if next_out not in early:
                    break
                index = next_out
                value, error = early.pop(index)
    finally:
        closing = True
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if bar is not None:
            bar.close()


async def collect(
    call: Call,
    inputs: Inputs,
    *,
    concurrency: int,
    return_exceptions: bool,
    progress: bool,
    description: str,
) -> list[Any]:
    """Every result in input order (what ``map`` returns)."""
    # Results arrive in completion order (no head-of-line blocking); each is placed at its
    # index in a list that grows as needed, so nothing but the list itself is kept.
    results: list[Any] = []
    async for index, value in run_batch(
        call,
        inputs,
        concurrency=concurrency,
        return_exceptions=return_exceptions,
        progress=progress,
        description=description,
    ):
        if index >= len(results):
            results.extend([None] * (index + 1 - len(results)))
        results[index] = value
    return results
