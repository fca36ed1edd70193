"""The portal: one event loop per process that every sync client's coroutines run on.

``Portal.call(coro)`` runs a coroutine on that loop and returns its result; ``Portal.iterate``
bridges an async generator one item at a time. The caller's context variables are visible to
the coroutine (it is scheduled with ``call_soon_threadsafe``, which copies the caller's context).

Who runs the loop: a sync call from a thread that runs no event loop of its own *leads*: it
drives the portal's loop itself until its coroutine is done, so a lone caller pays no thread
hand-off at all. Calls made while another thread leads (or from a thread that already runs an
event loop, as in Jupyter) *follow*: they schedule their coroutine and wait, and a background
daemon thread drives the loop for them whenever no leader does. At most one thread drives the
loop at a time (``_driver``).

Hazards handled here:
- a call made from inside the portal's loop raises instead of deadlocking;
- Ctrl-C cancels the coroutine and re-raises ``KeyboardInterrupt``;
- after ``os.fork()`` the child gets a fresh portal (the parent's threads do not exist there);
- at interpreter exit the loop is closed after the sync clients have closed (``_sync.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_EXIT_CLEANUP_TIMEOUT = 5.0
# A leader whose loop has not run for this long lets it take in network events first.
_IDLE_CHECK_AFTER = 0.001


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Portal:
    """One event loop, driven by the calling thread or, for followers, a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below
        self._wanted = threading.Condition(self._lock)  # the driver thread waits on it
        self._driver = threading.Lock()  # held by whichever thread runs the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pending = 0  # scheduled coroutines not finished yet
        self._drive_requested = False
        self._idle: asyncio.Future[None] | None = None
        self._stopped = False  # set at interpreter exit: no new work after that
        self._idle_since = 0.0  # when a thread last stopped driving the loop

    @property
    def thread(self) -> threading.Thread | None:
        """The background driver thread, once started."""
        return self._thread

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._stopped:
                raise RuntimeError(
                    "asyncbento's event loop has stopped: the interpreter is exiting"
                )
            if self._loop is None:
                self._loop = _new_event_loop()
            return self._loop

    # ----------------------------------------------------------------- bookkeeping

    def _add_pending(self) -> None:
        with self._lock:
            self._pending += 1

    def _done_pending(self) -> None:
        """Called on the loop when a scheduled coroutine ends."""
        with self._lock:
            self._pending -= 1
            idle = self._idle if self._pending == 0 else None
        if idle is not None and not idle.done():
            idle.set_result(None)

    def _request_driver(self) -> None:
        """Make sure the background thread drives the loop until nothing is pending."""
        with self._lock:
            self._drive_requested = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="asyncbento-portal", daemon=True
                )
                self._thread.start()
            self._wanted.notify()

    def _serve(self) -> None:
        """The background driver: runs the loop while followers wait."""
        while True:
            with self._lock:
                while not self._drive_requested and not self._stopped:
                    self._wanted.wait()
                if self._stopped:
                    return
                self._drive_requested = False
            loop = self._loop
            assert loop is not None
            with self._driver:
                if not loop.is_closed():
                    loop.run_until_complete(self._drain())
                self._idle_since = time.monotonic()

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if self._pending <= 0 or self._stopped:
                    self._idle = None
                    return
                idle = self._idle = asyncio.get_running_loop().create_future()
            await idle

    # ----------------------------------------------------------------- calls

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal's loop and return its result (or raise its error)."""
        loop = self._ensure_loop()
        running = _running_loop()
        if running is loop:
            coro.close()
            raise RuntimeError(
                "a sync asyncbento call was made from inside the client's own event loop, "
                "where it would deadlock; use AsyncHTTPClient in async code"
            )
        if running is None and self._driver.acquire(blocking=False):
            return self._lead(loop, coro)
        job = _Job(coro, self)
        self._add_pending()
        # The coroutine starts in a copy of the caller's context (call_soon copies it).
        loop.call_soon_threadsafe(job.start, loop)
        self._request_driver()
        try:
            job.done.acquire()  # interruptible by Ctrl-C in the main thread
        except KeyboardInterrupt:
            loop.call_soon_threadsafe(job.cancel)  # the request is abandoned on the loop
            raise
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def _lead(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
        """Drive the loop in this thread (which holds ``_driver``) until ``coro`` is done.

        The coroutine stops the loop itself as it ends, which saves the extra loop pass that
        ``run_until_complete`` spends on a done-callback.
        """
        lead = _Lead(coro, loop)
        handle: asyncio.Handle | None = None
        try:
            if time.monotonic() - self._idle_since >= _IDLE_CHECK_AFTER:
                # Nobody has run the loop for a while: let its first pass take in what the
                # network brought meanwhile (a server closing an idle keep-alive connection)
                # before the request picks a pooled connection, as a running loop would have.
                handle = loop.call_soon(lead.start)
            else:
                lead.start()
            try:
                loop.run_forever()
            except BaseException:
                task = lead.task
                if task is None:  # interrupted before the coroutine started
                    assert handle is not None
                    handle.cancel()
                    coro.close()
                elif not task.done():  # Ctrl-C while leading: let the loop finish the cancel
                    lead.leading = False
                    task.cancel()
                    self._add_pending()
                    task.add_done_callback(lambda _: self._done_pending())
                raise
            assert lead.task is not None
            return lead.task.result()
        finally:
            self._idle_since = time.monotonic()
            self._driver.release()
            if self._pending > 0:  # a follower came while we led (it also asks for a driver)
                self._request_driver()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Bridge an async generator into a plain generator, one item at a time.

        Leaving the ``for`` loop early closes the async generator, releasing its connection.
        """
        try:
            while True:
                try:
                    item = self.call(_anext(agen))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and not self._stopped:
                if _running_loop() is self._loop:
                    self.spawn(aclose())  # finalised by GC while our loop runs
                else:
                    self.call(aclose())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the loop without waiting for it (used by finalisers)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._stopped:
            coro.close()
            return
        self._add_pending()

        def start() -> None:
            task = loop.create_task(coro)
            task.add_done_callback(lambda _: self._done_pending())

        loop.call_soon_threadsafe(start)
        if _running_loop() is not loop:
            self._request_driver()

    def call_with_timeout(self, coro: Coroutine[Any, Any, T], timeout: float) -> T | None:
        """Like :meth:`call` but give up (returning None) after ``timeout`` seconds."""
        if self._loop is None or _running_loop() is self._loop:
            coro.close()
            return None
        try:
            return self.call(asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            return None

    def shutdown(self) -> None:
        """Close the loop (async generators first) and end the background thread."""
        with self._lock:
            loop = self._loop
            self._stopped = True
            self._wanted.notify_all()
        if loop is None or loop.is_closed():
            return
        if self._driver.acquire(timeout=_EXIT_CLEANUP_TIMEOUT):
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
            finally:
                self._driver.release()


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


class _Lead(Generic[T]):
    """A leader's coroutine, run as a task that stops the loop the moment it ends."""

    __slots__ = ("coro", "leading", "loop", "task")

    def __init__(self, coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> None:
        self.coro = coro
        self.loop = loop
        self.task: asyncio.Task[T] | None = None
        self.leading = True  # false once the leader gave up (Ctrl-C): then never stop

    def start(self) -> None:
        self.task = self.loop.create_task(self._run())  # in a copy of the caller's context

    async def _run(self) -> T:
        try:
            return await self.coro
        finally:
            if self.leading:
                self.loop.stop()


class _Job:
    """One coroutine handed to the loop, and how its caller learns that it is done.

    The follower that handed it over blocks on ``done`` (a plain lock: lighter than a
    concurrent Future).
    """

    __slots__ = ("cancelled", "coro", "done", "error", "portal", "result", "task")

    def __init__(self, coro: Coroutine[Any, Any, Any], portal: Portal) -> None:
        self.coro = coro
        self.portal = portal
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.cancelled:
            self.coro.close()
            self._finished()
            return
        self.task = loop.create_task(self.coro)
        self.task.add_done_callback(self.finish)

    def finish(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.error = asyncio.CancelledError()
        else:
            self.error = task.exception()
            if self.error is None:
                self.result = task.result()
        self._finished()

    def _finished(self) -> None:
        self.done.release()
        self.portal._done_pending()

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


_portal_lock = threading.Lock()
_portal: Portal | None = None
_fork_hooks: list[Callable[[], None]] = []


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


def _after_fork_in_child() -> None:
    global _portal, _portal_lock
    _portal_lock = threading.Lock()
    _portal = None
    for hook in _fork_hooks:
        hook()


def _shutdown_at_exit() -> None:
    portal = _portal
    if portal is not None:
        portal.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_at_exit)
