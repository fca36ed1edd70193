"""When a task is polled: the fixed schedule of ``task.wait()`` and the learned pace of a batch,
the latter driven by simulated tasks (no clock, no server)."""

from __future__ import annotations

import random
import statistics

import pytest

from asyncbento import exceptions as exc
from asyncbento._pace import POLL_MAX, LearnedPace, PollPace


def refusal(status: int = 429, retry_after: float | None = None) -> exc.BentoMLException:
    return exc.BentoMLException("Too many requests", status=status, retry_after=retry_after)


def simulate(pace: PollPace, running_times: list[float]) -> tuple[list[int], list[float]]:
    """Each task polled on ``pace`` until seen finished: its polls and how late it was seen."""
    polls_per_task, lateness = [], []
    for running in running_times:
        clock, polls, pause = 0.0, 0, pace.first()
        while True:
            clock += pause
            polls += 1
            if clock >= running:
                pace.finished(polls)
                break
            pause = pace.after_running(pause, polls)
        polls_per_task.append(polls)
        lateness.append(clock - running)
    return polls_per_task, lateness


def test_the_fixed_schedule_is_a_poll_at_once_then_50_ms_growing_to_1_s() -> None:
    pace = PollPace()
    pauses = [pace.first()]
    for polls in range(1, 12):
        pauses.append(pace.after_running(pauses[-1], polls))
    assert pauses[:4] == pytest.approx([0.0, 0.05, 0.075, 0.1125])
    assert pauses[-1] == POLL_MAX and max(pauses) == POLL_MAX
    error = refusal()
    with pytest.raises(exc.BentoMLException) as raised:  # a refusal fails a plain wait
        pace.after_refusal(error, 1, 1, 0.0)
    assert raised.value is error


@pytest.mark.parametrize("running", [0.02, 0.2, 3.0])
def test_the_learned_pace_settles_near_the_tasks_running_time(running: float) -> None:
    rng = random.Random(7)
    times = [rng.uniform(0.9 * running, 1.1 * running) for _ in range(400)]
    pace = LearnedPace(wait_out_refusals=True)
    polls, lateness = simulate(pace, times)
    settled_polls, settled_lateness = polls[200:], lateness[200:]
    assert 0.8 * running <= pace.first() <= 1.25 * running
    assert statistics.mean(settled_polls) <= 2.5
    # Seen finished within a fifth of its running time (the fixed schedule: up to half).
    assert statistics.mean(settled_lateness) <= 0.2 * running
    fixed_polls, fixed_lateness = simulate(PollPace(), times[200:])
    if running >= 0.2:
        assert statistics.mean(settled_polls) < statistics.mean(fixed_polls)
    assert statistics.mean(settled_lateness) < statistics.mean(fixed_lateness)


def test_the_learned_pace_follows_a_change_of_running_time() -> None:
    pace = LearnedPace(wait_out_refusals=True)
    simulate(pace, [1.0] * 200)
    assert 0.85 <= pace.first() <= 1.2
    simulate(pace, [0.1] * 200)
    assert 0.085 <= pace.first() <= 0.12


def test_a_refused_first_poll_is_learnt_as_still_running() -> None:
    pace = LearnedPace(wait_out_refusals=True)
    before = pace.first()
    assert pace.after_refusal(refusal(), 1, 1, 0.0) > 0
    assert pace.first() > before
    later = pace.first()
    pace.after_refusal(refusal(), 2, 2, 0.01)  # a later poll's refusal teaches nothing
    assert pace.first() == later


def test_refused_polls_are_waited_out_briefly_growing_or_as_told() -> None:
    pace = LearnedPace(wait_out_refusals=True)
    pauses = [pace.after_refusal(refusal(), n, 0, n * 0.01) for n in range(1, 30)]
    assert 0.005 <= pauses[0] <= 0.01
    assert all(0 < p <= POLL_MAX for p in pauses)
    assert pauses[-1] >= POLL_MAX / 2
    assert pace.after_refusal(refusal(503, retry_after=2.5), 1, 0, 0.0) == 2.5


def test_only_refusals_are_waited_out_and_only_when_asked() -> None:
    waiting = LearnedPace(wait_out_refusals=True)
    fixed_window = LearnedPace(wait_out_refusals=False)
    for pace, status in [(waiting, 500), (waiting, 404), (fixed_window, 429), (fixed_window, 503)]:
        error = refusal(status)
        with pytest.raises(exc.BentoMLException) as raised:
            pace.after_refusal(error, 1, 1, 0.0)
        assert raised.value is error


def test_refusals_are_waited_out_for_the_batchs_overload_budget_only() -> None:
    pace = LearnedPace(wait_out_refusals=True, budget=5.0)
    assert pace.after_refusal(refusal(), 40, 3, 4.9) > 0
    error = refusal()
    with pytest.raises(exc.BatchOverloaded) as raised:
        pace.after_refusal(error, 41, 4, 5.1)
    assert raised.value.__cause__ is error
    assert "Adaptive.max_stall" in str(raised.value)
