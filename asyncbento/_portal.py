"""The portal: one daemon thread per process running one event loop for all sync clients.

``Portal.call(coro)`` runs a coroutine there and blocks until it is done; ``Portal.iterate``
bridges an async generator one item at a time. The caller's context variables are visible to
the coroutine (``run_coroutine_threadsafe`` schedules it in a copy of the caller's context).

Hazards handled here:
- a call made from the portal's own thread raises instead of deadlocking;
- Ctrl-C in the waiting thread cancels the coroutine and re-raises ``KeyboardInterrupt``;
- after ``os.fork()`` the child gets a fresh portal (the parent's thread does not exist there);
- at interpreter exit the loop is stopped after the sync clients have closed (``_sync.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_EXIT_CLEANUP_TIMEOUT = 5.0


class Portal:
    """An event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False  # set at interpreter exit: no new loop after that

    @property
    def thread(self) -> threading.Thread | None:
        """The loop's thread, once started."""
        return self._thread

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._stopped:
                raise RuntimeError(
                    "asyncbento's event loop has stopped: the interpreter is exiting"
                )
            if self._loop is None:
                loop = _new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="asyncbento-portal", daemon=True
                )
                thread.start()
                ready.wait()
                self._thread = thread
                self._loop = loop
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal's loop and return its result (or raise its error)."""
        loop = self._loop or self._start()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a sync asyncbento call was made from the client's own event-loop thread, "
                "where it would deadlock; use AsyncHTTPClient in async code"
            )
        job = _Job(coro)
        # call_soon_threadsafe runs job.start in a copy of the caller's context, and the task
        # it creates copies that again: the caller's context variables reach the coroutine.
        loop.call_soon_threadsafe(job.start, loop)
        try:
            job.done.acquire()  # interruptible by Ctrl-C in the main thread
        except KeyboardInterrupt:
            loop.call_soon_threadsafe(job.cancel)  # the request is abandoned on the loop
            raise
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

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
                if threading.current_thread() is self._thread:
                    asyncio.ensure_future(aclose())  # finalised by GC on our own loop
                else:
                    self.call(aclose())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the loop without waiting for it (used by finalisers)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            return
        if threading.current_thread() is self._thread:
            loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, loop)

    def call_with_timeout(self, coro: Coroutine[Any, Any, T], timeout: float) -> T | None:
        """Like :meth:`call` but give up (returning None) after ``timeout`` seconds."""
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            coro.close()
            return None
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None

    def shutdown(self) -> None:
        """Stop the loop and its thread (pending async generators are closed first)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            self._stopped = True
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        if threading.current_thread() is not thread:
            thread.join(_EXIT_CLEANUP_TIMEOUT)


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


class _Job:
    """One coroutine handed to the loop, and a lock the caller blocks on until it is done.

    Lighter than ``run_coroutine_threadsafe`` (no concurrent Future and Condition): this is
    the whole per-call cost of the sync client.
    """

    __slots__ = ("cancelled", "coro", "done", "error", "result", "task")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.cancelled:
            self.coro.close()
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
        self.done.release()

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
