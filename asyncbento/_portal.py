"""The portal: one daemon thread per process that runs one event loop, all the time.

Every sync client's coroutines run on that loop. ``Portal.call(coro)`` hands a coroutine to the
loop and blocks until it is done; ``Portal.iterate`` bridges an async generator, stepping it
when asked or (streams) a bounded way ahead, so that a burst of items costs one thread wake-up
rather than one per item. The calling thread never runs the loop: the thread
``asyncbento-portal`` starts with the first call and runs the loop until interpreter exit. So
between calls the loop keeps working: a stream left early is closed at once, idle connections
expire on time, and a connection the server closes while the program does something else is
seen closed before any reuse.

Work reaches the loop through its inbox (``_handoff.Inbox``), which runs each callback in a copy
of the caller's context, so the caller's context variables are visible to the coroutine.

Hazards handled here:
- a call made from the portal's own thread raises instead of deadlocking;
- Ctrl-C in the waiting thread cancels the coroutine on the loop and raises
  ``KeyboardInterrupt`` at once (a stream interrupted mid-item is closed after that item's
  step has finished cancelling);
- after ``os.fork()`` the child gets a fresh portal, thread and loop on first use;
- at interpreter exit one hook runs the registered shutdown coroutines (``on_shutdown``: the
  sync clients close), then cancels what is left, stops the loop and joins the thread; daemon
  threads still waiting on a call or stream then stay waiting until the process ends, with no
  traceback.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

from ._handoff import Inbox, Waker, borrow, give_back

T = TypeVar("T")

_SHUTDOWN_TIMEOUT = 5.0


class Cut(Protocol):
    """What ends a bridged generator early: once ``closed``, ``closed_error()`` is raised.
    (An attribute, read before each item: cheaper than a call.)"""

    closed: bool

    def closed_error(self) -> BaseException: ...


class Portal:
    """One event loop, run by one daemon thread, that sync callers hand coroutines to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: Inbox | None = None  # how other threads hand the loop work
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._stopped = False  # set at interpreter exit: no new work after that
        self._spawned: set[asyncio.Task[Any]] = set()  # fire-and-forget tasks, kept alive

    def _start(self) -> Inbox:
        with self._lock:
            if self._stopped:
                raise RuntimeError(
                    "asyncbento's event loop has stopped: the interpreter is exiting"
                )
            if self._inbox is None:
                loop = _new_event_loop()
                inbox = Inbox(loop)
                thread = threading.Thread(
                    target=loop.run_forever, name="asyncbento-portal", daemon=True
                )
                thread.start()
                self._thread, self._thread_id = thread, thread.ident
                self._loop, self._inbox = loop, inbox
            return self._inbox

    # ----------------------------------------------------------------- calls

    def call(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the portal's loop and return its result (or raise its error).

        Raises:
            RuntimeError: called from the portal's own thread, where it would deadlock.
            KeyboardInterrupt: Ctrl-C while waiting; the coroutine is cancelled on the loop.
        """
        result: T = self._wait(self._submit(coro))
        return result

    def _submit(self, coro: Awaitable[Any]) -> _Job:
        job = _Job(coro, self._inbox_for_caller(coro))
        job.inbox.post(job.start)  # runs in a copy of the caller's context
        return job

    def _inbox_for_caller(self, work: object) -> Inbox:
        """The running loop's inbox, for work handed over from another thread (else ``work``
        is discarded and the call refused)."""
        inbox = self._inbox or self._start()
        if threading.get_ident() == self._thread_id:
            _discard(work)
            raise RuntimeError(
                "a sync asyncbento call was made from inside the client's own event loop, "
                "where it would deadlock; use AsyncHTTPClient in async code"
            )
        if self._stopped:
            _discard(work)
            raise RuntimeError("asyncbento's event loop has stopped: the interpreter is exiting")
        return inbox

    def _wait(self, job: _Job) -> Any:
        try:
            job.waker.wait()  # interruptible by Ctrl-C in the main thread
        except BaseException:
            job.abandon()  # the waker is dropped with the job, never waited on again
            raise
        give_back(job.waker)
        if job.error is not None:
            error, job.error = job.error, None
            if self._stopped:
                _park_daemon_thread()
            raise error
        return job.result

    def iterate(
        self,
        agen: AsyncIterator[T],
        read_ahead: int = 0,
        cut: Cut | None = None,
        read_ahead_size: int = 0,
        size_of: Callable[[Any], int] = len,
    ) -> Iterator[T]:
        """Bridge an async generator into a plain generator.

        The generator runs on the loop. With ``read_ahead=0`` it takes each step only when the
        consumer asks for the next item; with ``read_ahead=N`` it runs on by itself up to ``N``
        items ahead, so that items that come together (the chunks of one network read) cross
        the thread together instead of one wake-up each. ``read_ahead_size``, if given, also
        bounds the total ``size_of()`` of the items read ahead (``len()``: the bytes or
        characters of a stream's chunks), so that large items are not held ``read_ahead`` at a
        time. Once ``cut.closed`` is true, the next item is ``cut.closed_error()`` raised
        instead (the items read ahead are dropped), as the generator would raise it at its next
        step (a closed client).
        Leaving the ``for`` loop early (or dropping the generator) closes the async generator,
        releasing its connection before ``close()`` returns.
        """
        inbox = self._inbox_for_caller(agen)
        feed = _Feed(agen, inbox, read_ahead, read_ahead_size, size_of, cut)
        inbox.post(feed.start)  # runs in a copy of the caller's context
        items, cut = feed.items, feed.cut
        waiting = False
        try:
            while True:  # the next item: this loop runs once per item, its work kept inline
                if not items:
                    waiting = True
                    feed.wait_for_items()  # interruptible by Ctrl-C in the main thread
                    waiting = False
                    if not items:
                        break  # the generator has ended
                elif cut is not None and cut.closed:
                    items.clear()  # items read ahead are not handed out after the cut
                    raise cut.closed_error()
                item = items.popleft()
                if feed.paused and feed.half_taken():
                    feed.make_room()  # the loop paused with a full read-ahead: half is gone
                yield item
        finally:
            if feed.ended:
                pass  # the generator has finished: nothing is left to close
            elif waiting or threading.get_ident() == self._thread_id or self._stopped:
                self.spawn(feed.stop())  # interrupted, or collected on the loop: no waiting
            else:
                self.call(feed.stop())
        if feed.error is not None and self._stopped:
            _park_daemon_thread()
        feed.raise_error()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the loop without waiting for it (finalisers, interrupted streams)."""
        loop, inbox = self._loop, self._inbox
        if loop is None or inbox is None or loop.is_closed() or self._stopped:
            coro.close()
            return

        def start() -> None:
            task = loop.create_task(coro)
            self._spawned.add(task)
            task.add_done_callback(self._spawned.discard)

        inbox.post(start)

    # ----------------------------------------------------------------- exit

    def shutdown(self, before: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
        """Run ``before`` (each bounded in time), cancel what is left and stop the loop."""
        with self._lock:
            loop, inbox, thread = self._loop, self._inbox, self._thread
        if (
            loop is None
            or inbox is None
            or thread is None
            or not thread.is_alive()
            or loop.is_closed()
        ):
            self._stopped = True
            return
        if threading.get_ident() == self._thread_id:
            return  # cannot wait for the loop from the loop's own thread
        job = self._submit(_close_down(before))
        self._stopped = True  # later calls (from finalisers) are refused, not left waiting
        job.waker.wait(timeout=_SHUTDOWN_TIMEOUT * (len(before) + 2))
        inbox.post(loop.stop)
        thread.join(_SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
            # The inbox's descriptor stays open until the process ends: a daemon thread may
            # still be posting, and must not write to a number that a new file could reuse.
            loop.close()


async def _close_down(before: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    for hook in before:
        try:
            await asyncio.wait_for(hook(), _SHUTDOWN_TIMEOUT)
        except Exception:  # at exit there is no one left to tell
            pass
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not me]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=_SHUTDOWN_TIMEOUT)
    await loop.shutdown_asyncgens()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop for the portal: uvloop's when asked for with ``ASYNCBENTO_LOOP=uvloop``."""
    if os.environ.get("ASYNCBENTO_LOOP", "").lower() == "uvloop":
        try:
            import uvloop
        except ImportError as error:
            raise RuntimeError(
                "ASYNCBENTO_LOOP=uvloop needs uvloop: pip install 'asyncbento[uvloop]'"
            ) from error
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def _park_daemon_thread() -> None:
    """At exit, keep a daemon thread whose call the shutdown cut short waiting, as it would
    without asyncbento, instead of raising in it (a traceback printed while Python exits).

    Only daemon threads can still be waiting at exit: Python joins the others first.
    """
    me = threading.current_thread()
    if me.daemon and me is not threading.main_thread():
        threading.Event().wait()  # ends with the process


def _discard(work: object) -> None:
    close = getattr(work, "close", None)
    if close is not None:
        close()  # a coroutine never started: no "never awaited" warning


class _Job:
    """One awaitable handed to the loop, and how the waiting thread learns that it is done.

    The caller blocks on its thread's :class:`~._handoff.Waker` (lighter than a concurrent
    Future, and no GIL hand-off on waking). The awaitable runs inside a task of :meth:`_run`,
    which stores the outcome before waking the caller, so no done-callback pass is spent.
    """

    __slots__ = ("abandoned", "coro", "error", "finished", "inbox", "result", "task", "waker")

    def __init__(self, coro: Awaitable[Any], inbox: Inbox) -> None:
        self.coro = coro
        self.inbox = inbox
        self.waker: Waker = borrow()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.finished = False
        self.abandoned = False

    def start(self) -> None:
        self.task = self.inbox.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            self.result = await self.coro
        except BaseException as error:  # handed to the waiting thread, raised there
            self.error = error
        finally:
            self._finish()

    def _finish(self) -> None:
        self.finished = True
        if not self.abandoned:
            self.waker.wake()

    def abandon(self) -> None:
        """The waiting thread gave up (Ctrl-C): cancel the coroutine on the loop.

        Scheduled after ``start`` (callbacks run in order), so the task exists by then.
        """
        self.abandoned = True
        if not self.inbox.loop.is_closed():
            self.inbox.post(self._cancel)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class _Feed:
    """An async generator stepped on the loop for a consumer in another thread.

    Items go into a deque (safe between one appending and one popping thread). The loop steps
    the generator while the consumer wants an item, or while fewer than ``read_ahead`` items
    (and, if set, less than ``read_ahead_size`` of their ``size_of()``) wait; otherwise it pauses on
    ``room`` until the consumer has taken half of them. The consumer sleeps on ``wake`` (an
    eventfd of the feed's own) only when the deque is empty; the loop wakes it once it has
    appended what there is to append for now (a callback scheduled after the first append),
    so a burst of items costs one wake-up and an item that comes alone is handed over at
    once. Each side sets its own flag (``wanted``, ``paused``) before it reads the other's, so
    neither can sleep while the other waits for it.

    Sizes cost nothing per item on the consumer's side: the loop adds up what it appends
    (``added``, an upper bound of what waits) and sums the waiting items' sizes only once that
    bound reaches ``read_ahead_size``; the consumer sums them only while the loop is paused.
    """

    __slots__ = (
        "added",
        "agen",
        "ahead",
        "cut",
        "ended",
        "error",
        "inbox",
        "items",
        "paused",
        "room",
        "size",
        "size_of",
        "task",
        "wake",
        "waking",
        "wanted",
    )

    def __init__(
        self,
        agen: AsyncIterator[Any],
        inbox: Inbox,
        read_ahead: int,
        read_ahead_size: int,
        size_of: Callable[[Any], int],
        cut: Cut | None,
    ) -> None:
        self.agen = agen
        self.inbox = inbox
        self.ahead = read_ahead
        self.size, self.size_of = read_ahead_size, size_of
        self.added = 0  # at least the size of the items waiting (see _over_size)
        self.cut = cut
        self.items: collections.deque[Any] = collections.deque()
        self.wake = Waker()  # the feed's own: a wake-up left over is never another's
        self.waking = False  # a wake-up is scheduled on the loop
        self.room = asyncio.Event()
        self.paused = False
        self.wanted = False
        self.ended = False
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = self.inbox.loop.create_task(self._pump())

    async def _pump(self) -> None:
        items, step, ahead, size = self.items, self.agen.__anext__, self.ahead, self.size
        size_of = self.size_of
        try:
            while True:
                # (the first test is _may_step's, inline: this loop runs once per item)
                while (len(items) >= ahead or size and self.added >= size) and (
                    not self._may_step()
                ):
                    self.room.clear()
                    self.paused = True
                    if not self._may_step():
                        await self.room.wait()
                    self.paused = False
                # Stepped here, on the loop, so that the loop's async-generator hooks see the
                # generator (and ``shutdown_asyncgens`` can close it at exit).
                item = await step()
                items.append(item)
                if size:
                    self.added += size_of(item)
                if self.wanted and not self.waking:
                    # Woken once the loop has nothing more to append right now (the next
                    # network read, or a full read-ahead), not per item: a consumer woken at
                    # once would take one item, wait again, and cost two thread switches each.
                    self.waking = True
                    self.inbox.loop.call_soon(self._wake)
        except StopAsyncIteration:
            pass
        except BaseException as error:  # handed to the consumer, raised after the items
            self.error = error
        finally:
            self.ended = True
            self.wake.wake()

    def _may_step(self) -> bool:
        # Read ahead, or fetch the one item a waiting consumer wants (and only that one).
        items = self.items
        if len(items) < self.ahead and not self._over_size():
            return True
        return self.wanted and not items

    def _over_size(self) -> bool:
        if self.size and self.added >= self.size:
            self.added = self._waiting_size()  # the bound, made exact
            return self.added >= self.size
        return False

    def _wake(self) -> None:
        self.waking = False
        self.wake.wake()

    def make_room(self) -> None:
        if self.paused:
            self.paused = False
            self.inbox.post(self.room.set)

    def wait_for_items(self) -> None:
        """Block until an item waits or the generator has ended."""
        items = self.items
        self.wanted = True
        try:
            while not items and not self.ended:
                self.make_room()
                self.wake.wait()  # woken by the loop after an append, or at the end
        finally:
            self.wanted = False

    def half_taken(self) -> bool:
        """Whether the consumer has taken half of a full read-ahead (asked while paused)."""
        return len(self.items) <= self.ahead // 2 and (
            not self.size or self._waiting_size() <= self.size // 2
        )

    def _waiting_size(self) -> int:
        # Summed over a copy (taken at once): the other thread may append or pop meanwhile.
        return sum(map(self.size_of, self.items.copy()))

    def raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    async def stop(self) -> None:
        """Stop stepping and close the generator (its connection with it)."""
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        aclose = getattr(self.agen, "aclose", None)
        if aclose is not None:
            await aclose()


_portal_lock = threading.Lock()
_portal: Portal | None = None
_fork_hooks: list[Callable[[], None]] = []
_shutdown_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []
# A parent's portal in a forked child: its thread does not exist there, and its loop shares
# the parent's selector, so it is neither used nor closed; kept so that nothing finalises it.
_abandoned: list[Portal] = []


def get_portal() -> Portal:
    """The process-wide portal (a new one in a forked child)."""
    global _portal
    if _portal is None:
        with _portal_lock:
            if _portal is None:
                _portal = Portal()
    return _portal


def on_fork_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child after the portal has been replaced."""
    _fork_hooks.append(hook)


def on_shutdown(hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``hook()`` on the loop at interpreter exit, before the loop stops."""
    _shutdown_hooks.append(hook)


def _after_fork_in_child() -> None:
    global _portal, _portal_lock
    _portal_lock = threading.Lock()  # (the parent's wakers were dropped by _handoff's hook)
    if _portal is not None:
        _abandoned.append(_portal)
    _portal = None
    for hook in _fork_hooks:
        hook()


def _shutdown_at_exit() -> None:
    portal = _portal
    if portal is not None:
        portal.shutdown(_shutdown_hooks)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_at_exit)
