"""The two wake-ups between a calling thread and the portal's loop.

- :class:`Inbox`: callbacks handed *to* the loop from other threads. One queue and one file
  descriptor the loop watches (an eventfd, a pipe where there is none).
- :class:`Waker`: how the loop wakes *back* one thread that waits for a result. Each thread
  keeps one for its calls (:func:`borrow`, :func:`give_back`).

Both wake a sleeping thread with a write and sleep in a read, which let go of the GIL around
the system call, so the woken thread finds the GIL free.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import os
import select
import sys
import threading
from collections.abc import Callable

_ONE = (1).to_bytes(8, sys.byteorder)  # an eventfd counts up by an 8-byte integer


def _wake_fds(*, nonblocking: bool) -> tuple[int, int]:
    """(read end, write end): one eventfd, or a pipe's two ends where there is no eventfd."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_CLOEXEC | (os.EFD_NONBLOCK if nonblocking else 0))
        return fd, fd
    read, write = os.pipe()
    if nonblocking:
        os.set_blocking(read, False)
        os.set_blocking(write, False)
    return read, write


def _close_fds(*fds: int) -> None:
    for fd in set(fds) - {-1}:
        with contextlib.suppress(OSError):
            os.close(fd)


class Inbox:
    """Callbacks handed to a loop from any thread, each run there in a copy of its poster's
    context, in the order posted.

    Lighter than ``loop.call_soon_threadsafe``: asyncio wakes its loop through a socket pair
    (a ``send`` to post, two ``recv`` on the loop to drain) and allocates a handle per
    callback; here one write of an eventfd wakes the loop, one read drains it, and a post
    made while a wake-up is already on its way writes nothing. (A sync call costs about 10 µs
    of CPU less; ``benchmarks/shim_cost.py``.)

    On a loop that watches no file descriptors (Windows' proactor), the wake-up falls back to
    ``call_soon_threadsafe``.
    """

    __slots__ = ("_armed", "_items", "_read", "_write", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Made before the loop runs (``add_reader`` is called from this thread)."""
        self.loop = loop
        self._items: collections.deque[tuple[Callable[[], object], contextvars.Context]] = (
            collections.deque()
        )
        self._armed = False  # a wake-up is on its way: the loop will drain what is posted
        self._read, self._write = _wake_fds(nonblocking=True)
        try:
            loop.add_reader(self._read, self._drain)
        except NotImplementedError:
            _close_fds(self._read, self._write)
            self._read = self._write = -1

    def post(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` on the loop soon, in a copy of the calling thread's context."""
        self._items.append((callback, contextvars.copy_context()))
        if not self._armed:  # set before the wake-up, cleared by the loop before it drains
            self._armed = True
            if self._write < 0:
                self.loop.call_soon_threadsafe(self._drain)
            else:
                with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
                    os.write(self._write, _ONE)

    def _drain(self) -> None:
        if self._read >= 0:
            with contextlib.suppress(BlockingIOError):  # a wake-up already drained
                os.read(self._read, 4096)
        self._armed = False
        items = self._items
        for _ in range(len(items)):  # what the loop posts to itself now waits for a wake-up
            callback, context = items.popleft()
            try:
                context.run(callback)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as error:  # as the loop treats a failing callback
                self.loop.call_exception_handler(
                    {"message": "a callback handed to asyncbento's loop failed", "exception": error}
                )

    def close(self) -> None:
        """Stop watching the wake-up descriptor and close it (the loop has stopped)."""
        if self._read >= 0:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self._read)
        _close_fds(self._read, self._write)
        self._read = self._write = -1


class Waker:
    """Wakes one thread that waits for the loop.

    Waiting is a read, which lets go of the GIL before it sleeps; waking is a write, which lets
    go of the GIL before it wakes the reader. So the woken thread finds the GIL free. (A
    ``threading.Lock`` released on the loop wakes the waiter while the loop's thread still
    holds the GIL: the waiter wakes, finds it held, sleeps again and is woken once more, three
    thread switches instead of one; a round trip costs a third less this way.)

    A call given up (Ctrl-C) drops its waker, so a wake-up that comes late is never taken for
    the next call's. The file descriptor is closed when the waker is collected, never while a
    job may still write to it.
    """

    __slots__ = ("_read", "_write")

    def __init__(self) -> None:
        self._read, self._write = _wake_fds(nonblocking=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until woken (or ``timeout`` seconds pass: then ``False``)."""
        if timeout is not None and not select.select([self._read], [], [], timeout)[0]:
            return False
        os.read(self._read, 8)
        return True

    def wake(self) -> None:
        os.write(self._write, _ONE)

    def __del__(self) -> None:
        _close_fds(self._read, self._write)


_idle_wakers = threading.local()  # replaced in a forked child (the parent's are dropped)


def borrow() -> Waker:
    """The calling thread's waker, or a new one (its first call, or a call nested in one)."""
    waker: Waker | None = getattr(_idle_wakers, "waker", None)
    if waker is None:
        return Waker()
    _idle_wakers.waker = None
    return waker


def give_back(waker: Waker) -> None:
    """Keep ``waker`` for the thread's next call (it was woken once, for this call)."""
    _idle_wakers.waker = waker


def _drop_wakers_in_child() -> None:
    global _idle_wakers
    _idle_wakers = threading.local()  # the parent's wakers close here, before anything else


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_wakers_in_child)
