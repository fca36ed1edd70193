"""Retry decisions as small pure functions, and the tenacity loop that applies them.

The first attempt runs without any retry machinery, so a call that succeeds builds no policy
objects at all (and tenacity is not even imported until something fails); only when it fails
with something worth retrying does a tenacity ``AsyncRetrying`` run the later attempts, counting
from the second. Exceptions are never changed: the one finally raised after retries is a copy
of the last that carries the attempt count.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ._config import RetryPolicy
from .exceptions import (
    BentoMLException,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")

logger = logging.getLogger("asyncbento")

# Statuses that prove a task submission was refused, so that sending it again cannot
# create a second task. 502/504 do not: a proxy may have passed the request on.
_REFUSED_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)  # HTTP dates are always GMT
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def should_retry(policy: RetryPolicy, exc: BaseException, *, resend_safe: bool) -> bool:
    """Whether ``exc`` is worth another attempt under ``policy``.

    ``resend_safe`` is False for requests that must not be repeated unless the failure proves
    the server never took them (task submissions).
    """
    if not isinstance(exc, BentoMLException):
        return False
    if isinstance(exc, (ConnectError, ConnectTimeout)):
        return True
    if isinstance(exc, ConnectionLost):
        return resend_safe and exc.before_response
    status = getattr(exc, "status", None)
    if status is None or status not in policy.retry_statuses:
        return False
    if not resend_safe and status not in _REFUSED_STATUSES:
        return False
    return exc.retry_after is None or exc.retry_after <= policy.max_retry_after


def backoff_delay(policy: RetryPolicy, failed_attempts: int) -> float:
    """Exponential backoff before the next attempt, with optional jitter."""
    delay: float = min(
        policy.max_delay, policy.initial_delay * policy.multiplier ** (failed_attempts - 1)
    )
    if policy.jitter:
        delay = random.uniform(delay / 2, delay)
    return delay


def next_delay(policy: RetryPolicy, exc: BaseException | None, failed_attempts: int) -> float:
    """The wait before the next attempt: the server's ``Retry-After`` if it gave one."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return min(float(retry_after), policy.max_retry_after)
    return backoff_delay(policy, failed_attempts)


async def call_with_retry(
    policy: RetryPolicy | None,
    operation: Callable[[], Awaitable[T]],
    *,
    resend_safe: bool = True,
    target: tuple[str, object] | None = None,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``operation`` (which must rebuild its request each time) under ``policy``.

    The error finally raised is (a copy of) the last real one, with ``attempts`` on it. Each
    retry is logged (INFO, logger ``asyncbento``) with ``target`` (the HTTP method and URL,
    which hold no credentials) and the failure that caused it. ``pause`` waits between
    attempts (the transport's ends early when the client is closed).
    """
    started = time.monotonic()
    try:
        return await operation()
    except BentoMLException as exc:
        if policy is None or policy.max_attempts < 2:
            raise
        if not should_retry(policy, exc, resend_safe=resend_safe):
            raise
        delay = next_delay(policy, exc, 1)
        if out_of_attempts(policy, 1, time.monotonic() - started, delay):
            raise
        _log_retry(target, exc, delay, 2, policy)
    await pause(delay)
    return await _retry_after_first_failure(
        policy, operation, started, resend_safe=resend_safe, target=target, pause=pause
    )


def out_of_attempts(policy: RetryPolicy, made: int, elapsed: float, delay: float) -> bool:
    """Whether to give up after ``made`` attempts, ``elapsed`` seconds in, rather than wait
    ``delay`` seconds for another: ``max_attempts`` reached, or ``deadline`` would pass."""
    if made >= policy.max_attempts:
        return True
    return policy.deadline is not None and elapsed + delay > policy.deadline


def _log_retry(
    target: tuple[str, object] | None,
    exc: BaseException | None,
    delay: float,
    next_attempt: int,
    policy: RetryPolicy,
) -> None:
    logger.info(
        "%s %s failed (%s: %s); retrying in %.2f s (attempt %d of %d)",
        *(target or ("a", "request")),
        type(exc).__name__,
        getattr(exc, "message", exc),
        delay,
        next_attempt,
        policy.max_attempts,
    )


async def _retry_after_first_failure(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    started: float,
    *,
    resend_safe: bool,
    target: tuple[str, object] | None,
    pause: Callable[[float], Awaitable[None]],
) -> T:
    # Imported here, on the first failure only: a call that succeeds never needs tenacity.
    from tenacity import AsyncRetrying, retry_if_exception

    # Attempt 1 has been made; tenacity makes the rest: its attempt n is attempt n + 1.
    def stop(state: RetryCallState) -> bool:
        elapsed = time.monotonic() - started
        return out_of_attempts(policy, state.attempt_number + 1, elapsed, state.upcoming_sleep)

    def wait(state: RetryCallState) -> float:
        return next_delay(policy, _failure(state), state.attempt_number + 1)

    def log_retry(state: RetryCallState) -> None:
        _log_retry(target, _failure(state), state.upcoming_sleep, state.attempt_number + 2, policy)

    made = 1

    async def attempt() -> T:
        nonlocal made
        made += 1
        return await operation()

    retrying = AsyncRetrying(
        stop=stop,
        wait=wait,
        before_sleep=log_retry,
        retry=retry_if_exception(lambda e: should_retry(policy, e, resend_safe=resend_safe)),
        reraise=True,
        sleep=pause,
    )
    try:
        return await retrying(attempt)
    except BentoMLException as exc:
        # The last real error, as a copy that says how many attempts were made.
        raise exc._with_attempts(made).with_traceback(exc.__traceback__) from exc.__cause__


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None
