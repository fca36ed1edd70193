"""The adaptive window of a batch: how many calls to keep in flight against a service.

Pure bookkeeping, no I/O and no clock of its own (the engine passes ``now``), so that it can be
driven by a simulated service in tests.

The control law is loss-based AIMD, as in TCP congestion control:

- **Slow start**: the window starts small (``Adaptive.initial``) and grows by one per success,
  doubling each round trip, until the first overload signal or the ceiling.
- **Overload** (429, 503, a connection refused or timed out): the window shrinks once per round
  trip, by half the first time (slow start overshoots by up to 2x) and by ``Adaptive.decrease``
  afterwards, and never above the number of calls that were in flight when the refused call was
  sent (a service that caps its concurrency took at most that many; its refusals may come back
  late, after slow start sent far more). Refusals of calls sent before the last cut are the
  same congestion event and do not cut again, so a burst of 429s is one step, not a collapse
  to 1.
- **Growth** after the first overload is a binary search, as in BIC-TCP: the window closes half
  of the gap to the size that was last refused per round trip, then creeps past it by a quarter
  call per round trip (a probe every 8 round trips: against a service capped at K it sits at K
  and pays one refusal per probe; each refusal at the same size halves the creep, down to a
  probe every 64 round trips), and once past it grows faster and faster, doubling its distance
  from that size each round trip, up to ``growth`` x window per round trip (the capacity went
  up). A service capped at 256 recovers from a cut in a few
  round trips, not the hundreds of plain additive increase.
- Growth counts only while at least half the window is in flight, so a window never runs far
  ahead of what is in flight; it never leaves ``[1, ceiling]``.
- **Retry-After** pauses new calls until then (at most ``Adaptive.max_stall``). At a window of
  one, a refusal without ``Retry-After`` pauses new calls for 10 ms, doubling per refusal up to
  1 s until a call succeeds: a client that the others have squeezed out does not hammer the
  service with one refusal per round trip.

Why not a latency gradient (Netflix's Gradient2, TCP Vegas)? In a batch, latency mostly varies
with the input (a long prompt takes longer than a short one), so a rise in latency is a poor
sign of overload and would hold or shrink the window for no reason; BentoML says "overloaded"
plainly instead (429 above ``max_concurrency``, 503 while scaling), and a service that queues
instead of refusing shows it by timing out, which also shrinks the window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, kw_only=True)
class Adaptive:
    """How a batch adapts its window of calls in flight to what the service accepts.

    Pass ``adaptive=Adaptive(...)`` to ``map``, ``imap`` or ``map_tasks`` (``adaptive=True`` is
    the default below, ``adaptive=False`` a fixed window of ``concurrency`` calls).

    Args:
        initial: Window at the start (never above the batch's ``concurrency``).
        decrease: Factor applied to the window on an overload signal, after the first.
        growth: The most a window grows per round trip once past the size last refused, as a
            share of the window.
        max_stall: Overload budget in seconds: once the service has refused calls for this
            long without one input finishing, the batch gives up: the refused input and every
            input left fail with :class:`asyncbento.exceptions.BatchOverloaded`, unsent.
    """

    initial: int = 8
    decrease: float = 0.9
    growth: float = 0.25
    max_stall: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.initial, bool) or not isinstance(self.initial, int) or self.initial < 1:
            raise ValueError(f"initial must be an integer of at least 1, got {self.initial!r}")
        if not 0 < self.decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, got {self.decrease!r}")
        if not 0 <= self.growth <= 1:
            raise ValueError(f"growth must be between 0 and 1, got {self.growth!r}")
        if self.max_stall <= 0:
            raise ValueError("max_stall must be positive")


DEFAULT_ADAPTIVE: Final = Adaptive()

_PLATEAU = 0.25  # growth per round trip next to the last refusal: one probe in 8 round trips
_AHEAD_BITS = 32  # a token: the generation, then the calls ahead in these low bits
_AHEAD_MASK = (1 << _AHEAD_BITS) - 1
_BACKOFF_FIRST = 0.01  # pause after a refusal at a window of 1 (doubles per refusal)
_BACKOFF_MAX = 1.0
_PLATEAU_MIN = 1 / 32  # ... halved at each refusal at the same size: one in 64 at the least


class Window:
    """The number of calls a batch may have in flight now.

    ``settings=None`` is a fixed window of ``ceiling`` calls that no signal changes.

    A call is started with :meth:`start`, which returns a token to hand back to :meth:`success`
    or :meth:`overload` when it ends.
    """

    __slots__ = (
        "_cut",
        "_generation",
        "_peak",
        "_plateau",
        "_refusals",
        "_settings",
        "ceiling",
        "in_flight",
        "limit",
        "paused_until",
        "refused",
    )

    def __init__(self, ceiling: int, settings: Adaptive | None = DEFAULT_ADAPTIVE) -> None:
        self.ceiling = ceiling
        self._settings = settings
        self.limit = float(ceiling if settings is None else min(ceiling, settings.initial))
        self.in_flight = 0
        self.refused = 0  # overload signals seen
        self.paused_until = 0.0
        self._generation = 0  # bumped by every cut
        self._cut = False  # slow start ends at the first cut
        self._peak = 0.0  # calls in flight when the service last refused one
        self._plateau = _PLATEAU  # growth per round trip next to the peak
        self._refusals = 0  # overload signals since the last success

    @property
    def adaptive(self) -> bool:
        """Whether the window adapts (``False``: fixed at the ceiling)."""
        return self._settings is not None

    @property
    def max_stall(self) -> float:
        """The overload budget: seconds without progress before refused inputs fail."""
        return DEFAULT_ADAPTIVE.max_stall if self._settings is None else self._settings.max_stall

    @property
    def size(self) -> int:
        """Calls allowed in flight now."""
        return int(self.limit + 1e-9)  # 31.999... after many small steps is 32

    def has_room(self, now: float) -> bool:
        """Whether one more call may start now."""
        return self.in_flight < self.size and now >= self.paused_until

    def start(self) -> int:
        """Count a call as in flight; returns its token (the window's generation and how many
        calls were in flight before this one)."""
        ahead = self.in_flight
        self.in_flight = ahead + 1
        return (self._generation << _AHEAD_BITS) | min(ahead, _AHEAD_MASK)

    def count_refusal(self) -> None:
        """Count a refusal that the window does not act on (a task's status poll, waited out
        by the task's own pace), so that progress displays show every refused call."""
        self.refused += 1

    def end(self) -> None:
        """A call ended without telling anything about the service (a local error)."""
        self.in_flight -= 1

    def success(self, token: int) -> None:
        """A call finished with an answer from the service (good or bad)."""
        # The window is "in use" while at least half of it is in flight (as TCP's congestion
        # window validation, RFC 7661): a burst of answers would otherwise see its own growth as
        # unused places not yet filled, and slow start would crawl.
        in_use = 2 * self.in_flight >= self.size
        self.in_flight -= 1
        self._refusals = 0
        settings = self._settings
        if settings is None:
            return
        if token >> _AHEAD_BITS != self._generation or not in_use or self.limit >= self.ceiling:
            return
        limit, below = self.limit, self._peak - 1
        grown = limit + self._step(settings) / limit  # a round trip is a window of successes
        if limit < below:
            grown = min(grown, below)  # land on the last good size, then probe from there
        self.limit = min(float(self.ceiling), grown)

    def _step(self, settings: Adaptive) -> float:
        """How much the window grows per round trip (a window's worth of successes)."""
        limit, peak = self.limit, self._peak
        if not self._cut:
            return limit  # slow start: double
        if limit < peak - 1:
            return max(1.0, (peak - limit) / 2)  # halve the gap to the size last refused
        if limit < peak + 1:
            return self._plateau  # near where it was refused: probe gently
        return max(1.0, min(limit - peak, settings.growth * limit))  # the capacity grew

    def overload(self, token: int, now: float, retry_after: float | None = None) -> None:
        """The service refused a call, or could not be reached in time."""
        self.in_flight -= 1
        self.refused += 1
        settings = self._settings
        if settings is None:
            return
        self._refusals += 1
        if retry_after is not None:
            pause = min(retry_after, settings.max_stall)
            self.paused_until = max(self.paused_until, now + pause)
        elif self.limit < 2:
            # One call at a time and still refused: wait before the next, longer each time
            # (10 ms doubling to 1 s, reset by a success), or a starved actor would hammer the
            # service with a refusal every round trip.
            pause = min(_BACKOFF_FIRST * 2 ** (self._refusals - 1), _BACKOFF_MAX)
            self.paused_until = max(self.paused_until, now + random.uniform(pause / 2, pause))
        if token >> _AHEAD_BITS != self._generation:
            return  # sent before the last cut: the same congestion event
        factor = settings.decrease if self._cut else 0.5
        # The calls ahead of the refused one were in flight when it was sent: a service that
        # caps its concurrency took at most that many. (Refusals come back late from a busy
        # service, by when slow start may have sent far more than that.)
        ahead = token & _AHEAD_MASK
        peak = float(ahead + 1)
        # Refused at the same size again: probe half as often (a steady cap); elsewhere: anew.
        same = abs(peak - self._peak) <= 1
        self._plateau = max(self._plateau / 2, _PLATEAU_MIN) if same else _PLATEAU
        self._peak = peak
        self.limit = max(1.0, min(self.limit * factor, float(ahead)))
        self._cut = True
        self._generation += 1
