"""When to poll a task's status while waiting for it.

:class:`PollPace` is the schedule of a single ``task.wait()``: a poll at once, the next after
50 ms (tasks are often short), then each pause 1.5 times the last, at most 1 s. A refused poll
(429/503) fails the wait, as any other error does.

:class:`LearnedPace` is shared by the tasks of one batch (``map_tasks``), whose tasks mostly
take about as long as each other. It learns when to poll first: each first poll that finds
the task finished moves that time earlier, each that finds it running moves it later, so it
settles near the tasks' median running time and half of the tasks are seen finished at their
first poll. A task still running is then polled again soon (a tenth of that time, growing).

Why it matters: a BentoML task holds one of the server's request slots
(``max_concurrency``) until it ends, so a batch that sees a finished task late keeps a
window place idle. With the fixed schedule a 50 ms task is seen finished after 125 ms, and
the batch runs at 40 % of the service's capacity. A refused poll is waited out (its
``Retry-After``, or the next pause): the task exists, so only seeing its end is delayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ._config import OVERLOAD_STATUSES
from .exceptions import BatchOverloaded, BentoMLException

POLL_INITIAL = 0.05
POLL_MULTIPLIER = 1.5
POLL_MAX = 1.0

_EARLIER, _LATER = 0.85, 1.15  # how a first poll moves the next tasks' first poll
_SOON = 0.1  # a task still running is polled again after this share of the first poll
_REFUSED_FIRST = 0.01  # the pause after a refused poll (times 1.5 per refusal in a row)
_SHORTEST = 0.005  # no pause is shorter (seconds)
_LONGEST_FIRST = 60.0  # the learned first poll is never later than this (seconds)


class PollPace:
    """The fixed polling schedule of one ``task.wait()``: a poll at once, then after 50 ms,
    each pause 1.5 times the last, at most 1 s."""

    __slots__ = ()

    def first(self) -> float:
        """Seconds to wait before the first status poll."""
        return 0.0

    def after_running(self, pause: float, polls: int) -> float:
        """Seconds to wait after poll number ``polls`` (from 1) found the task running,
        ``pause`` being the wait before that poll."""
        return POLL_INITIAL if pause <= 0 else min(pause * POLL_MULTIPLIER, POLL_MAX)

    def finished(self, polls: int) -> None:
        """The task was seen finished at poll number ``polls``."""

    def after_refusal(
        self, error: BentoMLException, refusals: int, polls: int, refused_for: float
    ) -> float:
        """Seconds to wait after a request that failed with ``error``, or raise it (or an
        error of its own). ``refusals``: failures in a row for this task, for ``refused_for``
        seconds; ``polls``: the status polls so far, this one included (0 for a ``get``)."""
        raise error


class LearnedPace(PollPace):
    """A polling schedule shared by a batch's tasks, learning when they finish."""

    __slots__ = ("_budget", "_first", "_on_refusal", "_wait_out_refusals")

    def __init__(
        self,
        *,
        wait_out_refusals: bool,
        budget: float = 120.0,
        on_refusal: Callable[[], None] | None = None,
    ) -> None:
        """``wait_out_refusals``: a refused poll is sent again later (the adaptive batch)
        instead of failing the wait (a fixed window, whose retry policy handles refusals),
        for at most ``budget`` seconds in a row (the batch's ``Adaptive.max_stall``);
        ``on_refusal`` is told of each (the batch's count of refused calls)."""
        self._first = POLL_INITIAL
        self._wait_out_refusals = wait_out_refusals
        self._budget = budget
        self._on_refusal = on_refusal

    def first(self) -> float:
        return self._first

    def after_running(self, pause: float, polls: int) -> float:
        if polls == 1:
            self._learn(finished=False)
            return max(_SHORTEST, self._first * _SOON)
        return min(pause * POLL_MULTIPLIER, POLL_MAX)

    def finished(self, polls: int) -> None:
        if polls == 1:
            self._learn(finished=True)

    def after_refusal(
        self, error: BentoMLException, refusals: int, polls: int, refused_for: float
    ) -> float:
        if not self._wait_out_refusals or error.status not in OVERLOAD_STATUSES:
            raise error
        if self._on_refusal is not None:
            self._on_refusal()
        if refused_for > self._budget:
            raise BatchOverloaded(
                "gave up waiting for a task of this batch: the service refused its polls for "
                f"overload ({error}) for over {self._budget:g} s (Adaptive.max_stall); the "
                "task may still run",
                error_code=503,
            ) from error
        if polls == 1:
            # While the service's slots are full of running tasks it refuses polls; a task
            # that has ended frees its own slot. So a refused first poll mostly means "still
            # running": learnt as such, it keeps the first poll from drifting too early.
            self._learn(finished=False)
        if error.retry_after is not None:
            return error.retry_after
        pause = min(_REFUSED_FIRST * POLL_MULTIPLIER ** (refusals - 1), POLL_MAX)
        return random.uniform(pause / 2, pause)

    def _learn(self, *, finished: bool) -> None:
        first = self._first * (_EARLIER if finished else _LATER)
        self._first = min(max(first, _SHORTEST), _LONGEST_FIRST)
