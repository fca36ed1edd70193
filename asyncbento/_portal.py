"""The portal: one daemon thread per process that runs one event loop, all the time.

Every sync client's coroutines run on that loop. ``Portal.call(coro)`` hands a coroutine to the
loop and blocks until it is done; ``Portal.iterate`` bridges an async generator one item at a
time. The calling thread never runs the loop: the thread ``asyncbento-portal`` starts with the
first call and runs the loop until interpreter exit. So between calls the loop keeps working:
a stream left early is closed at once, idle connections expire on time, and a connection the
server closes while the program does something else is seen closed before any reuse.

The coroutine starts in a copy of the caller's context (``call_soon_threadsafe`` copies it), so
the caller's context variables are visible to it.

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
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_SHUTDOWN_TIMEOUT = 5.0


class Portal:
    """One event loop, run by one daemon thread, that sync callers hand coroutines to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._stopped = False  # set at interpreter exit: no new work after that
        self._spawned: set[asyncio.Task[Any]] = set()  # fire-and-forget tasks, kept alive

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._stopped:
                raise RuntimeError(
                    "asyncbento's event loop has stopped: the interpreter is exiting"
                )
            if self._loop is None:
                loop = _new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="asyncbento-portal", daemon=True
                )
                thread.start()
                self._thread, self._thread_id = thread, thread.ident
                self._loop = loop
            return self._loop

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
        loop = self._loop or self._start()
        if threading.get_ident() == self._thread_id:
            _discard(coro)
            raise RuntimeError(
                "a sync asyncbento call was made from inside the client's own event loop, "
                "where it would deadlock; use AsyncHTTPClient in async code"
            )
        if self._stopped:
            _discard(coro)
            raise RuntimeError("asyncbento's event loop has stopped: the interpreter is exiting")
        job = _Job(coro, loop)
        loop.call_soon_threadsafe(job.start)  # runs in a copy of the caller's context
        return job

    def _wait(self, job: _Job) -> Any:
        try:
            job.done.acquire()  # interruptible by Ctrl-C in the main thread
        except BaseException:
            job.abandon()
            raise
        if job.error is not None:
            error, job.error = job.error, None
            if self._stopped:
                _park_daemon_thread()
            raise error
        return job.result

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Bridge an async generator into a plain generator, one item at a time.

        Leaving the ``for`` loop early (or dropping the generator) closes the async generator,
        releasing its connection before ``close()`` returns.
        """
        job: _Job | None = None
        try:
            while True:
                job = self._submit(_anext(agen))
                try:
                    item = self._wait(job)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            self._close_generator(agen, job)

    def _close_generator(self, agen: AsyncIterator[Any], last: _Job | None) -> None:
        aclose = getattr(agen, "aclose", None)
        if aclose is None or self._stopped or self._loop is None:
            return
        if last is not None and not last.finished:
            # Interrupted mid-item: close once that step has finished cancelling, without
            # making the interrupted caller wait.
            self.spawn(_close_after(last, aclose))
        elif threading.get_ident() == self._thread_id:
            self.spawn(aclose())  # dropped and collected on the loop's own thread
        else:
            self.call(aclose())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the loop without waiting for it (finalisers, interrupted streams)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._stopped:
            coro.close()
            return

        def start() -> None:
            task = loop.create_task(coro)
            self._spawned.add(task)
            task.add_done_callback(self._spawned.discard)

        loop.call_soon_threadsafe(start)

    # ----------------------------------------------------------------- exit

    def shutdown(self, before: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
        """Run ``before`` (each bounded in time), cancel what is left and stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive() or loop.is_closed():
            self._stopped = True
            return
        if threading.get_ident() == self._thread_id:
            return  # cannot wait for the loop from the loop's own thread
        job = self._submit(_close_down(before))
        self._stopped = True  # later calls (from finalisers) are refused, not left waiting
        job.done.acquire(timeout=_SHUTDOWN_TIMEOUT * (len(before) + 2))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
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


async def _close_after(job: _Job, aclose: Callable[[], Awaitable[Any]]) -> None:
    if job.task is not None:
        await asyncio.wait([job.task])
    await aclose()


async def _anext(agen: AsyncIterator[T]) -> T:
    # Called on the loop, so that the loop's async-generator hooks see the generator's first
    # step (and ``shutdown_asyncgens`` can close it at exit).
    return await agen.__anext__()


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


def _discard(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # a coroutine never started: no "never awaited" warning


class _Job:
    """One awaitable handed to the loop, and how the waiting thread learns that it is done.

    The caller blocks on ``done`` (a plain lock: lighter than a concurrent Future). The
    awaitable runs inside a task of :meth:`_run`, which stores the outcome before releasing
    ``done``, so no done-callback pass is spent.
    """

    __slots__ = ("coro", "done", "error", "finished", "loop", "result", "task")

    def __init__(self, coro: Awaitable[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.coro = coro
        self.loop = loop
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.finished = False

    def start(self) -> None:
        self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            self.result = await self.coro
        except BaseException as error:  # handed to the waiting thread, raised there
            self.error = error
        finally:
            self._finish()

    def _finish(self) -> None:
        self.finished = True
        self.done.release()

    def abandon(self) -> None:
        """The waiting thread gave up (Ctrl-C): cancel the coroutine on the loop.

        Scheduled after ``start`` (callbacks run in order), so the task exists by then.
        """
        loop = self.loop
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


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
    _portal_lock = threading.Lock()
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
