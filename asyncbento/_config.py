"""Frozen, keyword-only configuration objects: Timeout, Limits, RetryPolicy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, Union

from ._validate import check_count, check_seconds
from .exceptions import ArgumentError, ArgumentValueError


class _NotGiven(enum.Enum):
    """Sentinel type for "use the client's default" (``None`` means "disabled")."""

    NOT_GIVEN = enum.auto()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = _NotGiven.NOT_GIVEN


DEFAULT_TOTAL: Final = 30.0  # seconds per call, and for the readiness wait when that is unbounded


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

    total: float | None = DEFAULT_TOTAL
    connect: float | None = None
    read: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            check_seconds(f"timeout {name}", getattr(self, name))

    @classmethod
    def coerce(cls, value: TimeoutLike) -> Timeout:
        """Accept a Timeout, a number of seconds (the total) or ``None`` (no limit).

        Raises:
            ArgumentError: not a number, ``None`` or a Timeout (a ``TypeError``).
            ArgumentValueError: zero, negative, NaN or infinite (a ``ValueError``).
        """
        if isinstance(value, Timeout):
            return value
        return cls(total=check_seconds("timeout", value))


TimeoutLike = Union[Timeout, float, int, None]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Connection pool limits, and how large an answer may be.

    Args:
        max_connections: Most connections open at once (also the most requests in flight).
        max_connections_per_host: Most connections to one host (0 = same as max_connections).
        keepalive_expiry: Seconds an idle connection is kept; below uvicorn's 5 s so that we
            never reuse a connection the server is about to close.
        max_answer_size: Most bytes of an answer read into memory (JSON, text, bytes), counted
            after decompression; a larger one raises ``ResponseTooLarge``. ``None``: no limit.
        max_file_size: Most bytes of a file answer written to disk, after decompression; a
            larger one raises ``ResponseTooLarge`` and leaves no file. ``None``: no limit.
    """

    max_connections: int = 100
    max_connections_per_host: int = 0
    keepalive_expiry: float = 4.0
    max_answer_size: int | None = 256 * 1024 * 1024
    max_file_size: int | None = 16 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        check_count("max_connections", self.max_connections, 1)
        check_count("max_connections_per_host", self.max_connections_per_host, 0)
        if check_seconds("keepalive_expiry", self.keepalive_expiry, zero_ok=True) is None:
            raise ArgumentError("keepalive_expiry must be a number of seconds")
        for name in ("max_answer_size", "max_file_size"):
            if getattr(self, name) is not None:
                check_count(name, getattr(self, name), 1)

    @classmethod
    def check(cls, value: object) -> Limits:
        """``value`` if it is a Limits, else an :class:`~asyncbento.exceptions.ArgumentError`."""
        if not isinstance(value, Limits):
            raise ArgumentError(f"limits must be an asyncbento.Limits, not {value!r}")
        return value

    @property
    def in_flight(self) -> int:
        """The most requests this pool lets run at once."""
        per_host = self.max_connections_per_host or self.max_connections
        return min(self.max_connections, per_host)


DEFAULT_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
# Answers that mean "overloaded, nothing done": a batch waits them out instead of failing.
OVERLOAD_STATUSES: Final = frozenset({429, 503})


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
        check_count("max_attempts", self.max_attempts, 1)
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            if check_seconds(name, getattr(self, name), zero_ok=True) is None:
                raise ArgumentError(f"{name} must be a number of seconds")
        if check_seconds("multiplier", self.multiplier) is None or self.multiplier < 1:
            raise ArgumentValueError("multiplier must be a number, 1 or more")
        check_seconds("deadline", self.deadline)
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))


DEFAULT_RETRY: Final = RetryPolicy()
DEFAULT_LIMITS: Final = Limits()
