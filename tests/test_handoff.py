"""The inbox that hands callbacks to the portal's loop from other threads (``_handoff.Inbox``).

Each test runs a loop on a thread of its own, as the portal does, and posts from others.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asyncbento._handoff import Inbox

caller_name: contextvars.ContextVar[str] = contextvars.ContextVar("caller_name", default="-")


class LoopThread:
    """A selector loop run by a thread of its own, with an inbox made before it runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.SelectorEventLoop()
        self.inbox = Inbox(self.loop)
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def settle(self) -> None:
        """Wait until everything posted so far has run."""
        done = threading.Event()
        self.inbox.post(done.set)
        assert done.wait(5), "the loop did not drain its inbox"

    def stop(self) -> None:
        self.inbox.post(self.loop.stop)
        self.thread.join(5)
        self.inbox.close()
        self.loop.close()


def run_threads(target: Callable[..., None], *argument_lists: tuple[Any, ...]) -> None:
    """Run ``target(*arguments)`` on one thread per argument list, and wait for them all."""
    threads = [threading.Thread(target=target, args=arguments) for arguments in argument_lists]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.stop()


def test_posts_from_many_threads_all_run_in_each_posters_order(loop_thread: LoopThread) -> None:
    ran: list[tuple[int, int]] = []
    ran_on: set[int] = set()

    def record(poster: int, index: int) -> None:
        ran.append((poster, index))
        ran_on.add(threading.get_ident())

    def poster(number: int) -> None:
        for index in range(500):
            loop_thread.inbox.post(lambda index=index: record(number, index))

    run_threads(poster, *[(number,) for number in range(8)])
    loop_thread.settle()
    assert len(ran) == 8 * 500
    for number in range(8):
        assert [index for who, index in ran if who == number] == list(range(500))
    assert ran_on == {loop_thread.thread.ident}


def test_a_callback_runs_in_a_copy_of_its_posters_context(loop_thread: LoopThread) -> None:
    seen: dict[str, str] = {}

    def poster(name: str) -> None:
        caller_name.set(name)
        loop_thread.inbox.post(lambda: seen.__setitem__(name, caller_name.get()))
        # a change the callback makes stays in its copy
        loop_thread.inbox.post(lambda: caller_name.set("changed on the loop"))
        loop_thread.settle()
        seen[name + " after"] = caller_name.get()

    run_threads(poster, *[(f"t{i}",) for i in range(4)])
    assert seen == {f"t{i}": f"t{i}" for i in range(4)} | {f"t{i} after": f"t{i}" for i in range(4)}


def test_a_failing_callback_is_reported_and_the_rest_still_run(loop_thread: LoopThread) -> None:
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("boom")

    loop_thread.inbox.post(lambda: ran.append(1))
    loop_thread.inbox.post(fail)
    loop_thread.inbox.post(lambda: ran.append(2))
    loop_thread.settle()
    assert ran == [1, 2]
    assert len(loop_thread.errors) == 1
    assert isinstance(loop_thread.errors[0]["exception"], ValueError)


@pytest.mark.skipif(not hasattr(os, "eventfd"), reason="counts an eventfd's wake-ups")
def test_posts_made_while_a_wake_up_is_on_its_way_write_nothing(loop_thread: LoopThread) -> None:
    busy, release = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        busy.set()
        release.wait(5)

    ran: list[int] = []
    loop_thread.inbox.post(hold_the_loop)
    assert busy.wait(5)
    for index in range(100):
        loop_thread.inbox.post(lambda index=index: ran.append(index))
    # 100 posts while the loop was busy: one wake-up written (the eventfd counts writes)
    count = int.from_bytes(os.read(loop_thread.inbox._read, 8), "little")
    assert count == 1
    os.write(loop_thread.inbox._write, (1).to_bytes(8, "little"))  # put it back
    release.set()
    loop_thread.settle()
    assert ran == list(range(100))


def test_a_callback_that_posts_again_does_not_hold_the_loop(loop_thread: LoopThread) -> None:
    """What the loop posts to itself runs in a later pass: its timers and I/O still run."""
    rounds = [0]
    timer_fired = threading.Event()

    def again() -> None:
        rounds[0] += 1
        if not timer_fired.is_set():
            loop_thread.inbox.post(again)

    loop_thread.loop.call_soon_threadsafe(loop_thread.loop.call_later, 0.05, timer_fired.set)
    loop_thread.inbox.post(again)
    assert timer_fired.wait(5), "the loop was stuck draining its own posts"
    loop_thread.settle()
    assert rounds[0] > 1


class NoReaders(asyncio.SelectorEventLoop):
    """A loop that watches no file descriptors, as Windows' proactor loop does not."""

    def add_reader(self, *args: Any) -> None:
        raise NotImplementedError


def test_a_loop_that_watches_no_descriptors_is_woken_by_call_soon_threadsafe() -> None:
    running = LoopThread(NoReaders())
    try:
        assert running.inbox._read == running.inbox._write == -1
        ran: list[int] = []

        def poster() -> None:
            for index in range(200):
                running.inbox.post(lambda index=index: ran.append(index))

        run_threads(poster, (), (), (), ())
        running.settle()
        assert sorted(ran) == sorted(list(range(200)) * 4)
    finally:
        running.stop()


def test_close_stops_watching_and_closes_the_descriptor() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    LoopThread().stop()
    before = open_fds()
    for _ in range(20):
        running = LoopThread()
        running.stop()  # closes the inbox, then the loop
        assert running.inbox._read == running.inbox._write == -1
    assert open_fds() <= before + 5  # 20 inboxes left open would be 20 descriptors


def test_no_wake_up_is_lost_when_threads_post_and_wait_in_turn(loop_thread: LoopThread) -> None:
    """Many threads each post and wait for their callback, over and over, as sync calls do:
    a post that raced with a drain and found no wake-up on its way would leave its thread
    waiting for ever."""
    stuck: list[int] = []

    def caller(number: int) -> None:
        done = threading.Event()
        for _ in range(1500):
            done.clear()
            loop_thread.inbox.post(done.set)
            if not done.wait(5):
                stuck.append(number)
                return

    run_threads(caller, *[(number,) for number in range(8)])
    assert stuck == []
