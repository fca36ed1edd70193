"""The adaptive window on its own, driven by a simulated service in simulated time.

The simulation is a discrete-event loop: the engine's side keeps as many calls in flight as the
window allows; the service accepts up to its capacity (refusing the rest at once, as BentoML's
``max_concurrency`` does) and answers after a latency that may grow with its load.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from asyncbento._limiter import Adaptive, Window

REFUSAL_TIME = 0.001  # a 429 comes back at once


@dataclass
class Service:
    """A simulated service: capacity and latency may be functions of time and load."""

    capacity: Callable[[float], int]
    latency: Callable[[float, int], float] = lambda now, load: 0.05
    timeout: float = 1e9  # the client gives up on a call after this long (an overload signal)
    unavailable: Callable[[float], float | None] = lambda now: None  # -> Retry-After, or None
    load: int = 0
    max_load: int = 0


@dataclass
class Run:
    done: int = 0
    refused: int = 0
    timed_out: int = 0
    trace: list[tuple[float, int]] = field(default_factory=list)  # (time, window)
    max_in_flight: int = 0
    started_while_paused: int = 0
    finished_at: float = 0.0


def simulate(service: Service, window: Window, inputs: int, until: float = 1e9) -> Run:
    """Send ``inputs`` calls through ``window``; refused ones go back to the queue."""
    run = Run()
    events: list[tuple[float, int, str, int, float]] = []  # (time, seq, kind, token, started)
    now, seq, queued = 0.0, 0, inputs
    while run.done < inputs and now < until:
        while queued and window.has_room(now):
            queued -= 1
            token = window.start()
            run.max_in_flight = max(run.max_in_flight, window.in_flight)
            retry_after = service.unavailable(now)
            if retry_after is not None or service.load >= service.capacity(now):
                kind = "refused" if retry_after is None else f"503:{retry_after}"
                heapq.heappush(events, (now + REFUSAL_TIME, seq, kind, token, now))
            else:
                service.load += 1
                service.max_load = max(service.max_load, service.load)
                latency = service.latency(now, service.load)
                if latency > service.timeout:
                    heapq.heappush(events, (now + service.timeout, seq, "timeout", token, now))
                else:
                    heapq.heappush(events, (now + latency, seq, "ok", token, now))
            seq += 1
        if not events:  # paused by a Retry-After: jump to its end
            now = max(now, window.paused_until)
            continue
        now, _, kind, token, started = heapq.heappop(events)
        if kind == "ok":
            service.load -= 1
            run.done += 1
            window.success(token)
        elif kind == "timeout":  # the call failed; the service still works on it (not modelled)
            service.load -= 1
            window.overload(token, now)
            run.timed_out += 1
            run.done += 1
        else:
            retry_after = float(kind[4:]) if kind.startswith("503:") else None
            window.overload(token, now, retry_after)
            run.refused += 1
            queued += 1  # re-queued, not lost
        run.trace.append((now, window.size))
    run.finished_at = now
    return run


def sizes_between(run: Run, start: float, end: float) -> list[int]:
    return [size for when, size in run.trace if start <= when < end]


@pytest.mark.parametrize("capacity", [4, 32, 256])
def test_converges_near_the_capacity(capacity: int) -> None:
    window = Window(1024)
    inputs = capacity * 200
    run = simulate(Service(capacity=lambda now: capacity), window, inputs)
    ideal = inputs * 0.05 / capacity
    assert run.done == inputs
    assert run.finished_at < ideal / 0.9  # at least 90 % of the capacity, start-up included
    late = sizes_between(run, ideal / 2, ideal)
    assert min(late) >= 0.8 * capacity
    assert max(late) <= 1.25 * capacity + 1
    assert run.refused < inputs * 0.1  # a probe above the capacity every few round trips


def test_never_exceeds_the_ceiling_and_stays_at_it_when_uncapped() -> None:
    window = Window(64)
    run = simulate(Service(capacity=lambda now: 10_000), window, 10_000)
    assert run.max_in_flight == 64
    assert max(size for _, size in run.trace) == 64
    assert run.refused == 0
    assert run.finished_at < 10_000 * 0.05 / 64 * 1.05  # costs nothing when the service keeps up


def test_follows_a_capacity_change_mid_run_down_and_up() -> None:
    def capacity(now: float) -> int:
        return 64 if now < 5 else 8 if now < 10 else 64

    window = Window(128)
    run = simulate(Service(capacity=capacity), window, 100_000, until=15)
    before, during, after = (
        sizes_between(run, 4, 5),
        sizes_between(run, 8, 10),
        sizes_between(run, 14, 15),
    )
    assert min(before) >= 0.8 * 64 and max(before) <= 1.25 * 64 + 1
    assert min(during) >= 0.8 * 8 and max(during) <= 1.25 * 8 + 1  # came down
    assert min(after) >= 0.8 * 64 and max(after) <= 1.25 * 64 + 1  # and recovered


def test_a_burst_of_503_with_retry_after_pauses_then_recovers() -> None:
    def unavailable(now: float) -> float | None:
        return 2.0 if 3.0 <= now < 3.5 else None

    window = Window(32)
    service = Service(capacity=lambda now: 32, unavailable=unavailable)
    run = simulate(service, window, 100_000, until=10)
    # Calls sent during the burst were refused; then nothing was sent for the Retry-After.
    assert window.paused_until >= 5.0
    assert not sizes_between(run, 3.6, 5.0)  # nothing happened while paused
    assert run.refused <= 64  # one window's worth, not a storm of retries
    assert min(sizes_between(run, 9, 10)) >= 0.8 * 32  # back near the capacity


def test_latency_that_grows_with_load_converges_below_the_timeout() -> None:
    # A service that queues instead of refusing: beyond 16 in flight each call takes longer,
    # and the client's timeout (0.2 s) is reached at 64 in flight.
    def latency(now: float, load: int) -> float:
        return 0.05 * max(1.0, load / 16)

    window = Window(512)
    service = Service(capacity=lambda now: 10_000, latency=latency, timeout=0.2)
    run = simulate(service, window, 50_000)
    late = sizes_between(run, run.finished_at / 2, run.finished_at)
    # Slow start overshoots while the first timeouts take 0.2 s to come back.
    assert max(size for _, size in run.trace) <= 3 * 64
    assert min(late) >= 16 and max(late) <= 1.1 * 64  # converged under the timeout
    assert run.timed_out < 0.05 * 50_000  # each probe past the knee costs a round trip of them
    assert run.finished_at < 50_000 * 0.05 / 16 * 1.1


def test_a_fixed_window_ignores_every_signal() -> None:
    window = Window(16, None)
    assert window.size == 16
    token = window.start()
    window.overload(token, now=0.0, retry_after=5.0)
    assert (window.size, window.paused_until, window.refused) == (16, 0.0, 1)


def test_bounds_after_many_refusals() -> None:
    window = Window(10)
    for _ in range(100):
        window.overload(window.start(), now=0.0)
    assert window.size == 1
    for _ in range(200):  # round trips with the window full
        tokens = [window.start() for _ in range(window.size)]
        for token in tokens:
            window.success(token)
    assert window.size == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"initial": 2.5},
        {"decrease": 1.0},
        {"growth": -0.1},
        {"max_stall": 0},
    ],
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Adaptive(**kwargs)  # type: ignore[arg-type]


def simulate_many(capacity: int, windows: list[Window], until: float) -> list[tuple[float, int]]:
    """Several actors' windows against one capped service; returns (time, calls accepted)."""
    events: list[tuple[float, int, str, int, int]] = []  # (time, seq, kind, actor, token)
    now, seq, load = 0.0, 0, 0
    trace: list[tuple[float, int]] = []
    while now < until:
        for actor, window in enumerate(windows):
            while window.has_room(now):
                token = window.start()
                if load >= capacity:
                    heapq.heappush(events, (now + REFUSAL_TIME, seq, "refused", actor, token))
                else:
                    load += 1
                    heapq.heappush(events, (now + 0.05, seq, "ok", actor, token))
                seq += 1
        if not events:  # every actor is pausing: jump to the first that resumes
            now = min(window.paused_until for window in windows)
            continue
        now, _, kind, actor, token = heapq.heappop(events)
        if kind == "ok":
            load -= 1
            windows[actor].success(token)
        else:
            windows[actor].overload(token, now)
        trace.append((now, load))
    return trace


def test_many_actors_share_a_capped_service() -> None:
    # The Ray guide's worked example: 8 actors, ceiling 32 each, a service capped at 32.
    windows = [Window(32) for _ in range(8)]
    trace = simulate_many(32, windows, until=60)
    late = [load for when, load in trace if when >= 30]
    assert sum(late) / len(late) >= 0.9 * 32  # the service stays busy
    assert all(1 <= window.size <= 32 for window in windows)
    assert 28 <= sum(window.size for window in windows) <= 40
    # An actor squeezed to a window of 1 backs off instead of sending one refused call per
    # millisecond: a few refusals per second and actor at most, over the 60 s.
    assert sum(window.refused for window in windows) < 8 * 60 * 10
