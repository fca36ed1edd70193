"""Frozen, keyword-only configuration objects: Timeout, Limits, RetryPolicy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, Union


class _NotGiven(enum.Enum):
    """Sentinel type for "use the client's default" (``None`` means "disabled")."""

    NOT_GIVEN = enum.auto()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = _NotGiven.NOT_GIVEN


@dataclass(frozen=True, kw_only=True)
class Timeout:
    """Time limits for one request, in seconds (``None`` = no limit).

    Args:
        total: Whole request, from sending to the last byte of the answer. For streams it bounds
            the wait for the answer to start; the stream itself is then bounded by ``read``.
        connect: Opening the connection (TCP and TLS). Waiting for a free pooled connection
            is not counted against any of these limits.
        read: Longest silence between two reads of the answer.
    """

    total: float | None = 30.0
    connect: float | None = None
    read: float | None = None

    @classmethod
    def coerce(cls, value: TimeoutLike) -> Timeout:
        """Accept a Timeout, a number of seconds (the total) or ``None`` (no limit)."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"timeout must be a number, None or asyncbento.Timeout, not {value!r}")
        if value <= 0:
            raise ValueError(f"timeout must be positive, got {value!r}")
        return cls(total=float(value))


TimeoutLike = Union[Timeout, float, int, None]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Connection pool limits.

    Args:
        max_connections: Most connections open at once (also the most requests in flight).
        max_connections_per_host: Most connections to one host (0 = same as max_connections).
        keepalive_expiry: Seconds an idle connection is kept; below uvicorn's 5 s so that we
            never reuse a connection the server is about to close.
    """

    max_connections: int = 100
    max_connections_per_host: int = 0
    keepalive_expiry: float = 4.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_connections_per_host < 0:
            raise ValueError("max_connections_per_host must be 0 or more")
        if self.keepalive_expiry < 0:
            raise ValueError("keepalive_expiry must be 0 or more")

    @property
    def in_flight(self) -> int:
        """The most requests this pool lets run at once."""
        per_host = self.max_connections_per_host or self.max_connections
        return min(self.max_connections, per_host)


DEFAULT_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how often to try a failed request again.

    Retried by default: failures to connect, connections dropped before any answer, and the
    statuses in ``retry_statuses`` (429, 502, 503, 504). Never retried: 500 and other 4xx,
    a timeout after the request was sent, a stream that has already yielded, and a task
    submission unless the failure proves the server did not receive it.

    Args:
        max_attempts: Attempts in all, the first included (1 = no retries).
        initial_delay: Wait before the second attempt, in seconds.
        multiplier: Growth of the wait from one attempt to the next.
        max_delay: Cap on one wait.
        jitter: Randomise each wait (full jitter between half and the whole of it).
        retry_statuses: HTTP statuses worth retrying.
        max_retry_after: Longest ``Retry-After`` honoured; a server asking for more is not
            retried and its error is raised at once.
        deadline: Give up retrying once this many seconds have passed since the first attempt.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: bool = True
    retry_statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    max_retry_after: float = 60.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))


DEFAULT_RETRY: Final = RetryPolicy()
DEFAULT_TIMEOUT: Final = Timeout()
DEFAULT_LIMITS: Final = Limits()
