"""The batch engine behind ``map``, ``imap``, ``map_tasks``, the CLI and Ray: an async callable
applied to every input of a sync or async iterable, with an adaptive number of calls in flight.

:func:`run_batch` is three parts, each small enough to read alone:

- the feeder (:class:`_Source`) pulls inputs lazily and numbers them; inputs the service refused
  for overload are handed back to it and come out first. It bounds how many inputs are pulled
  but not yet delivered (``concurrency`` unordered; twice that when ordered, the extra being the
  reorder buffer), so memory stays flat and a consumer that stops early stops the pulling too;
- the worker pool (:class:`_Pool`) keeps as many calls in flight as the window
  (:class:`asyncbento._limiter.Window`) allows, spawning workers only as inputs come (never one
  task per input, never more workers than calls in flight), and tells the window what each call
  said of the service's load;
- the ordering stage (:func:`_delivered`) hands results to the consumer, in completion or input
  order.

Every pulled input ends as a result or as an error at its index: nothing is dropped, and an
input whose call raised :class:`Overload` with ``resend=True`` (the client's side raises it for
429, 503 and connections refused) is sent again rather than failed, until the batch's overload
budget (``Adaptive.max_stall``) runs out. The engine itself knows nothing of HTTP or clients: the
callables come from ``_endpoints.batch_call`` / ``task_batch_call``.

The hand-offs use deques and bare futures rather than ``asyncio.Queue`` / ``Semaphore``: per
input that is about a third of the overhead, which matters when a batch is millions of small
calls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sized,
)
from typing import Any, Union

from ._limiter import DEFAULT_ADAPTIVE, Adaptive, Window
from ._progress import Progress
from .exceptions import ArgumentError, BatchOverloaded

Inputs = Union[Iterable[Any], AsyncIterable[Any]]  # noqa: UP007 - a runtime alias on 3.10
Call = Callable[[Any], Awaitable[Any]]

_END: Any = object()  # what a source returns once it is exhausted


# ----------------------------------------------------------------------------- overload


class Overload(Exception):
    """Raised by a batch call to say the service is overloaded; the engine unwraps it.

    The engine knows nothing of HTTP: the caller's side decides which failures are overload
    (see ``_overload.py``) and raises this around them.

    Args:
        error: The failure itself: what the input ends with if it is not sent again.
        resend: The service did no work for this input (a refusal), so it is re-queued;
            ``False`` for a sign of overload after which the input still fails (a timeout).
        retry_after: Seconds the service asked to wait before new calls.
    """

    def __init__(self, error: Exception, *, resend: bool, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.resend = resend
        self.retry_after = retry_after


# ----------------------------------------------------------------------------- arguments


def check_concurrency(concurrency: Any) -> int:
    """``concurrency`` as a validated int.

    Raises:
        ArgumentError: not an integer (a float, a bool, a string...).
        ValueError: below 1.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise ArgumentError(
            f"concurrency must be an integer, not {type(concurrency).__qualname__} "
            f"({concurrency!r})"
        )
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    return concurrency


def make_window(concurrency: Any, adaptive: bool | Adaptive = True) -> Window:
    """The window of a batch: ``concurrency`` is the ceiling; ``adaptive=False`` fixes it there.

    Raises:
        ArgumentError: ``concurrency`` is not an integer, or ``adaptive`` neither a bool nor
            an :class:`Adaptive`.
        ValueError: ``concurrency`` is below 1.
    """
    ceiling = check_concurrency(concurrency)
    if adaptive is True:
        return Window(ceiling, DEFAULT_ADAPTIVE)
    if adaptive is False:
        return Window(ceiling, None)
    if not isinstance(adaptive, Adaptive):
        raise ArgumentError(f"adaptive must be a bool or asyncbento.Adaptive, not {adaptive!r}")
    return Window(ceiling, adaptive)


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


# ----------------------------------------------------------------------------- the feeder


class _Source:
    """Pulls inputs lazily and numbers them; inputs handed back for overload come out first.

    It also bounds how many inputs are pulled but not yet delivered to the consumer (the
    buffer): a worker that would pull beyond it waits until the consumer frees a slot, so a
    slow consumer stops the pulling and memory stays flat.
    """

    __slots__ = (
        "_async",
        "_buffer",
        "_lock",
        "_loop",
        "_next_index",
        "_outstanding",
        "_slot_waiters",
        "_sync",
        "exhausted",
        "requeued",
    )

    def __init__(self, inputs: Inputs, buffer: int, loop: asyncio.AbstractEventLoop) -> None:
        self._sync: Any = None
        self._async: Any = None
        self._lock: asyncio.Lock | None = None
        if isinstance(inputs, AsyncIterable):
            self._async = aiter(inputs)
            self._lock = asyncio.Lock()  # an async iterator must not be entered twice at once
        else:
            self._sync = iter(inputs)
        self._loop = loop
        self._buffer = buffer
        self._outstanding = 0  # pulled, not yet delivered
        self._slot_waiters: deque[asyncio.Future[bool]] = deque()
        self._next_index = 0
        self.exhausted = False
        self.requeued: deque[tuple[int, Any]] = deque()

    @property
    def done(self) -> bool:
        """Nothing left to take: the inputs ran out and nothing waits to be sent again."""
        return self.exhausted and not self.requeued

    async def take(self) -> tuple[int, Any] | None:
        """The next input to call, with its index; ``None`` once there is none."""
        if self.requeued:
            return self.requeued.popleft()  # it kept its slot
        if self.exhausted:
            return None
        if self._outstanding < self._buffer:
            self._outstanding += 1
        else:
            waiter: asyncio.Future[bool] = self._loop.create_future()
            self._slot_waiters.append(waiter)
            if not await waiter:
                return self.requeued.popleft() if self.requeued else None
        if self._lock is None:
            item = next(self._sync, _END)
        else:
            async with self._lock:
                item = _END if self.exhausted else await anext(self._async, _END)
        if item is _END:
            self._end()
            return self.requeued.popleft() if self.requeued else None
        index = self._next_index
        self._next_index = index + 1
        return index, item

    def give_back(self, index: int, item: Any) -> None:
        """Send ``item`` again later (the service refused it for overload)."""
        self.requeued.append((index, item))

    def release(self) -> None:
        """The consumer took one result: its slot passes to a waiting worker, or is freed."""
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self._outstanding -= 1

    def _end(self) -> None:
        self._outstanding -= 1  # the slot taken for the pull that found the end
        self.exhausted = True
        while self._slot_waiters:  # no slot for them: they stop
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)


# ----------------------------------------------------------------------------- the worker pool


class _Pool:
    """Workers that keep the window's worth of calls in flight, spawned only as inputs come.

    A worker holds a place in the window (a token from :meth:`Window.start`) from before it
    takes an input until its call ends. A worker without a place waits at the gate; when a call
    ends, free places are handed to waiting workers, or else to new workers: at most as many
    new ones at a time as there are workers that have found an input, so the pool doubles
    while inputs keep coming (a window of 256 fills in 8 steps, not 256) and a short input
    never starts more than about twice as many workers as it has inputs, whatever the ceiling.
    Finished inputs go to the consumer as ``(index, value, error)``.
    """

    def __init__(
        self, call: Call, source: _Source, window: Window, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._call = call
        self._source = source
        self._window = window
        self._loop = loop
        self._adaptive = window.adaptive
        self._gate: deque[asyncio.Future[int | None]] = deque()
        self._spawning = 0  # new workers that have not found an input yet
        self._found = 0  # workers that have found one
        self._timer: asyncio.TimerHandle | None = None
        self._progress_at = loop.time()  # last time an input finished (the stall clock)
        self._given_up: Exception | None = None  # the refusal that spent the overload budget
        self.tasks: list[asyncio.Task[None]] = []
        self.live = 0
        self.finished: deque[tuple[int, Any, BaseException | None]] = deque()
        self.consumer: asyncio.Future[None] | None = None
        self.fatal: BaseException | None = None
        self.closing = False

    def start(self) -> None:
        self._fill()

    def wake_consumer(self) -> None:
        waiter, self.consumer = self.consumer, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fill(self) -> None:
        """Hand out the window's free places: to waiting workers, else to one new worker."""
        window, source, gate = self._window, self._source, self._gate
        while not source.done and window.in_flight < window.size:
            if self._given_up is None and self._loop.time() < window.paused_until:
                self._wake_after_pause()
                return
            if gate:
                waiter = gate.popleft()
                if not waiter.done():
                    waiter.set_result(window.start())
            elif self._spawning < max(1, self._found):
                self._spawning += 1
                self.live += 1
                self.tasks.append(self._loop.create_task(self._worker(window.start())))
            else:
                return
        if source.done:
            while gate:  # nothing left for them: they stop
                waiter = gate.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    def _wake_after_pause(self) -> None:
        if self._timer is None and not self.closing:
            delay = self._window.paused_until - self._loop.time()
            self._timer = self._loop.call_later(delay, self._after_pause)

    def _after_pause(self) -> None:
        self._timer = None
        if not self.closing:
            self._fill()

    async def close(self) -> None:
        """Cancel the workers (the batch ended, failed or was left early)."""
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _place(self) -> int | None:
        """A place in the window for this worker's next call; ``None``: stop."""
        window = self._window
        if (
            window.in_flight < window.size
            and not self._gate
            and (self._given_up is not None or self._loop.time() >= window.paused_until)
        ):
            return window.start()
        waiter: asyncio.Future[int | None] = self._loop.create_future()
        self._gate.append(waiter)
        self._fill()  # the source may be done, or the window may have room again
        return await waiter

    async def _worker(self, token: int | None) -> None:
        fresh = True  # spawned by _fill, which counts it until it finds an input
        try:
            while token is not None:
                job = await self._source.take()
                if fresh:
                    fresh = False
                    self._spawning -= 1
                    if job is not None:
                        self._found += 1
                        self._fill()  # it found an input: there may be more for others
                if job is None:
                    self._window.end()
                    self._fill()
                    return
                await self._run(token, *job)
                self._fill()
                token = await self._place()
        except asyncio.CancelledError as error:
            if not self.closing and self.fatal is None:
                # Not our cancellation: something inside a call cancelled it; losing that
                # input silently would break the promise that every input is accounted for.
                self.fatal = RuntimeError("a batch call was cancelled from within")
                self.fatal.__cause__ = error
            raise
        except BaseException as error:
            if self.fatal is None:
                self.fatal = error  # the inputs iterable raised: a batch cannot go on without it
            raise
        finally:
            self.live -= 1
            if fresh:
                self._spawning -= 1
            else:
                self._found -= 1
            self.wake_consumer()

    async def _run(self, token: int, index: int, item: Any) -> None:
        """Call one input; its result or error goes to the consumer, or it is re-queued."""
        if self._given_up is not None:  # the overload budget is spent: fail without sending
            self._window.end()
            self._finish(index, None, self._gave_up(self._given_up, item))
            return
        try:
            value = await self._call(item)
        except Exception as error:  # every input ends as a result or an error
            failure = self._failure(token, error, item)
            if failure is None:
                self._source.give_back(index, item)
                return
            self._finish(index, None, failure)
        else:
            self._window.success(token)
            self._finish(index, value, None)

    def _finish(self, index: int, value: Any, error: BaseException | None) -> None:
        if not isinstance(error, BatchOverloaded):
            self._progress_at = self._loop.time()  # the stall clock counts real progress only
        self.finished.append((index, value, error))
        self.wake_consumer()

    def _failure(self, token: int, error: Exception, item: Any) -> Exception | None:
        """Tell the window what ``error`` says of the service; the input's error, or ``None``
        to send the input again."""
        window = self._window
        if not isinstance(error, Overload):
            window.success(token)  # an answer: the input failed on its own, not for load
            return error
        now = self._loop.time()
        window.overload(token, now, error.retry_after)
        if not (error.resend and self._adaptive):
            return error.error
        if now - self._progress_at <= window.max_stall:
            return None
        self._given_up = error.error  # from now on every input left fails at once
        return self._gave_up(error.error, item)

    def _gave_up(self, refusal: Exception, item: Any) -> BatchOverloaded:
        """The error of an input given up on (one per input: each gets its own notes)."""
        overloaded = BatchOverloaded(
            f"gave up on this batch input: the service refused calls for overload ({refusal}) "
            f"for over {self._window.max_stall:g} s without one input finishing "
            "(Adaptive.max_stall)",
            error_code=503,
            batch_input=item,
        )
        overloaded.__cause__ = refusal
        return overloaded


# ----------------------------------------------------------------------------- the ordering stage


async def _delivered(pool: _Pool) -> AsyncGenerator[tuple[int, Any, BaseException | None], None]:
    """Finished inputs as ``(index, value, error)``, in completion order, until all are done."""
    finished, loop = pool.finished, asyncio.get_running_loop()
    while True:
        if pool.fatal is not None:
            raise pool.fatal
        if finished:
            yield finished.popleft()
        elif pool.live == 0:
            return
        else:
            pool.consumer = waiter = loop.create_future()
            await waiter


async def _in_order(
    results: AsyncGenerator[tuple[int, Any, BaseException | None], None],
) -> AsyncGenerator[tuple[int, Any, BaseException | None], None]:
    """Results re-ordered by index; early ones wait in a buffer the source's bound keeps small."""
    early: dict[int, tuple[Any, BaseException | None]] = {}
    next_out = 0
    async for index, value, error in results:
        if index != next_out:
            early[index] = (value, error)
            continue
        yield index, value, error
        next_out += 1
        while next_out in early:
            value, error = early.pop(next_out)
            yield next_out, value, error
            next_out += 1


# ----------------------------------------------------------------------------- the engine


async def run_batch(
    call: Call,
    inputs: Inputs,
    *,
    concurrency: int = 64,
    adaptive: bool | Adaptive = True,
    window: Window | None = None,
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
        concurrency: The most calls in flight at once (the window's ceiling).
        adaptive: Adapt the window to what the service accepts (an :class:`Adaptive` to tune
            it); ``False`` keeps ``concurrency`` calls in flight and treats an overload like
            any other failure.
        window: A window made by :func:`make_window`, to watch it from outside (replaces
            ``concurrency`` and ``adaptive``).
        ordered: Yield in input order, buffering at most ``concurrency`` early results.
        return_exceptions: Yield a failed input's exception as its result; otherwise the first
            failure is raised and the calls in flight are cancelled.
        progress: Show a tqdm progress bar.
        description: The bar's label.
        total: Number of inputs for the bar's ETA (default: ``len(inputs)`` if it has one).

    Raises:
        ArgumentError: ``concurrency`` is not an integer.
        ValueError: ``concurrency`` is below 1.
        TypeError: ``inputs`` is not an iterable of inputs.
        ImportError: ``progress=True`` without tqdm installed.
    """
    window = make_window(concurrency, adaptive) if window is None else window
    _check_inputs(inputs)
    if total is None and isinstance(inputs, Sized):
        total = len(inputs)
    bar = Progress(total, description, window) if progress else None
    loop = asyncio.get_running_loop()
    source = _Source(inputs, window.ceiling * (2 if ordered else 1), loop)
    pool = _Pool(call, source, window, loop)
    pool.start()
    results = _delivered(pool)
    try:
        async for index, value, error in _in_order(results) if ordered else results:
            if bar is not None:
                bar.update(error is not None)
            if error is not None and not return_exceptions:
                raise _note(error, index)
            source.release()
            yield index, (value if error is None else error)
    finally:
        await pool.close()
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
    adaptive: bool | Adaptive = True,
) -> list[Any]:
    """Every result in input order (what ``map`` returns)."""
    return await in_order(
        run_batch(
            call,
            inputs,
            concurrency=concurrency,
            adaptive=adaptive,
            return_exceptions=return_exceptions,
            progress=progress,
            description=description,
        )
    )


async def in_order(pairs: AsyncIterator[tuple[int, Any]]) -> list[Any]:
    """The values of ``(index, value)`` pairs, placed by index (results in input order)."""
    # Results arrive in completion order (no head-of-line blocking); each is placed at its
    # index in a list that grows as needed, so nothing but the list itself is kept.
    results: list[Any] = []
    async for index, value in pairs:
        if index >= len(results):
            results.extend([None] * (index + 1 - len(results)))
        results[index] = value
    return results
