"""Bounded-concurrency batch calls: ``map``, ``imap`` and ``map_tasks``.

One engine, :func:`run_batch`: ``concurrency`` workers pull inputs lazily from the (sync or
async) iterable and call the endpoint; a window semaphore bounds how many inputs are pulled
but not yet handed to the consumer, so memory stays flat however many inputs there are, and
an ordered consumer never buffers more than the window. Every input ends as a result or an
error at its index: nothing is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ._client import AsyncEndpointMethod, AsyncHTTPClient

Inputs = Union[Iterable[Any], AsyncIterable[Any]]  # noqa: UP007 - a runtime alias on 3.10
Call = Callable[[Any], Awaitable[Any]]

_DONE = object()


def resolve_endpoint(client: AsyncHTTPClient, endpoint: Any) -> AsyncEndpointMethod:
    """An endpoint name, an async endpoint method, or a sync one (its async twin is used)."""
    from ._client import AsyncEndpointMethod

    if isinstance(endpoint, str):
        methods = client._methods
        if not methods:
            client._require_setup()
        if endpoint not in methods:
            from .exceptions import NotFound

            raise NotFound(f"endpoint {endpoint!r} not found in the service")
        return methods[endpoint]
    method = getattr(endpoint, "_async", endpoint)  # SyncEndpointMethod wraps the async one
    if isinstance(method, AsyncEndpointMethod):
        return method
    raise TypeError(f"endpoint must be an endpoint name or method, not {endpoint!r}")


def endpoint_call(method: AsyncEndpointMethod) -> Call:
    """Call ``method`` with one batch input: a dict of arguments, or a root input's value."""
    is_root = method.endpoint.root is not None
    is_stream = method.endpoint.is_stream

    async def call(item: Any) -> Any:
        if is_root:
            result = method(item)
        elif isinstance(item, dict):
            result = method(**item)
        else:
            raise TypeError(
                f"{method.__name__}() batch inputs must be dicts of arguments, "
                f"not {type(item).__qualname__}"
            )
        if is_stream:
            return _join([chunk async for chunk in result])
        return await result

    return call


def task_call(method: AsyncEndpointMethod, timeout: float | None) -> Call:
    """Submit one input as a task and wait for its result."""
    if not method.endpoint.is_task:
        raise TypeError(f"{method.__name__} is not a task endpoint")

    async def call(item: Any) -> Any:
        if not isinstance(item, dict):
            raise TypeError(
                f"{method.__name__}.submit() batch inputs must be dicts of arguments, "
                f"not {type(item).__qualname__}"
            )
        task = await method.submit(**item)
        return await task.result(timeout)

    return call


def _join(chunks: list[Any]) -> Any:
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, bytes) for c in chunks):
        return b"".join(chunks)
    return chunks


class _Source:
    """Pulls inputs one at a time from a sync or async iterable, numbering them."""

    def __init__(self, inputs: Inputs) -> None:
        if isinstance(inputs, AsyncIterable):
            self._async: AsyncIterator[Any] | None = aiter(inputs)
            self._sync = None
        else:
            self._async = None
            self._sync = iter(inputs)
        self._lock = asyncio.Lock()
        self._next_index = 0
        self.exhausted = False

    async def pull(self) -> tuple[int, Any]:
        """The next (index, input), or (-1, _DONE) at the end."""
        async with self._lock:  # one pull at a time: iterators are not re-entrant
            if self.exhausted:
                return -1, _DONE
            try:
                if self._async is not None:
                    item = await anext(self._async)
                else:
                    assert self._sync is not None
                    item = next(self._sync)
            except (StopIteration, StopAsyncIteration):
                self.exhausted = True
                return -1, _DONE
            index = self._next_index
            self._next_index += 1
            return index, item


class _Progress:
    """An optional tqdm bar (imported only when asked for)."""

    def __init__(self, enabled: bool, total: int | None, description: str) -> None:
        self.errors = 0
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError as error:
                raise ImportError(
                    "progress=True needs tqdm: pip install 'asyncbento[progress]'"
                ) from error
            self._bar = tqdm(total=total, desc=description, unit="call")

    def update(self, failed: bool) -> None:
        if failed:
            self.errors += 1
        if self._bar is not None:
            self._bar.update(1)
            if failed:
                self._bar.set_postfix(errors=self.errors, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def run_batch(
    call: Call,
    inputs: Inputs,
    *,
    concurrency: int = 64,
    ordered: bool = False,
    return_exceptions: bool = False,
    progress: bool = False,
    description: str = "asyncbento",
) -> AsyncIterator[tuple[int, Any]]:
    """Yield ``(index, result)`` for every input; errors in place of results when
    ``return_exceptions`` is true, else the first error is raised and the rest cancelled."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    total = len(inputs) if hasattr(inputs, "__len__") else None  # type: ignore[arg-type]
    source = _Source(inputs)
    window = asyncio.Semaphore(concurrency * 2 if ordered else concurrency)
    finished: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()
    bar = _Progress(progress, total, description)

    async def worker() -> None:
        while True:
            await window.acquire()
            index, item = await source.pull()
            if item is _DONE:
                window.release()
                return
            try:
                finished.put_nowait((index, await call(item), None))
            except Exception as error:  # every input ends as a result or an error
                finished.put_nowait((index, None, error))

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    running = len(workers)
    for task in workers:
        task.add_done_callback(lambda _: finished.put_nowait((-1, _DONE, None)))
    waiting: dict[int, tuple[Any, BaseException | None]] = {}
    next_to_yield = 0
    try:
        while running:
            index, value, error = await finished.get()
            if value is _DONE and index == -1:
                running -= 1
                continue
            bar.update(error is not None)
            if error is not None and not return_exceptions:
                raise error
            if not ordered:
                window.release()
                yield index, (error if error is not None else value)
                continue
            waiting[index] = (value, error)
            while next_to_yield in waiting:
                value, error = waiting.pop(next_to_yield)
                window.release()
                yield next_to_yield, (error if error is not None else value)
                next_to_yield += 1
        for task in workers:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure  # the inputs iterator itself failed
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
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
    results: dict[int, Any] = {}
    async for index, value in run_batch(
        call,
        inputs,
        concurrency=concurrency,
        return_exceptions=return_exceptions,
        progress=progress,
        description=description,
    ):
        results[index] = value
    return [results[i] for i in range(len(results))]
