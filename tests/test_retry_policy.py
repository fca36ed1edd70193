"""Unit tests: retry decisions, backoff, Retry-After, and the retry loop itself."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from asyncbento import RetryPolicy
from asyncbento import exceptions as exc
from asyncbento._retry import (
    backoff_delay,
    call_with_retry,
    next_delay,
    parse_retry_after,
    should_retry,
)

FAST = RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.01, jitter=False)


def http_error(status: int, retry_after: float | None = None) -> exc.BentoMLException:
    cls = exc.exception_for_status(status)
    return cls(f"HTTP {status}", error_code=status, status=status, retry_after=retry_after)


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    past = email.utils.formatdate(now - 300, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert should_retry(RetryPolicy(), http_error(status), resend_safe=True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 501])
def test_statuses_never_retried(status: int) -> None:
    assert not should_retry(RetryPolicy(), http_error(status), resend_safe=True)


def test_transport_failures() -> None:
    policy = RetryPolicy()
    assert should_retry(policy, exc.ConnectError("x"), resend_safe=True)
    assert should_retry(policy, exc.ConnectTimeout("x"), resend_safe=False)
    assert should_retry(policy, exc.ConnectionLost("x", before_response=True), resend_safe=True)
    assert not should_retry(
        policy, exc.ConnectionLost("x", before_response=False), resend_safe=True
    )
    assert not should_retry(policy, exc.ReadTimeout("x"), resend_safe=True)
    assert not should_retry(policy, exc.TLSError("x"), resend_safe=True)
    assert not should_retry(policy, ValueError("x"), resend_safe=True)


def test_submissions_retry_only_when_refusal_is_proven() -> None:
    policy = RetryPolicy()
    assert should_retry(policy, exc.ConnectError("x"), resend_safe=False)
    assert should_retry(policy, http_error(503), resend_safe=False)
    assert should_retry(policy, http_error(429), resend_safe=False)
    assert not should_retry(policy, http_error(502), resend_safe=False)
    assert not should_retry(policy, http_error(504), resend_safe=False)
    assert not should_retry(
        policy, exc.ConnectionLost("x", before_response=True), resend_safe=False
    )


def test_retry_after_above_cap_is_not_retried() -> None:
    policy = RetryPolicy(max_retry_after=10)
    assert should_retry(policy, http_error(503, retry_after=10), resend_safe=True)
    assert not should_retry(policy, http_error(503, retry_after=11), resend_safe=True)


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, multiplier=2, max_delay=3, jitter=False)
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3, 3]
    jittery = RetryPolicy(initial_delay=1, jitter=True)
    for _ in range(50):
        assert 0.5 <= backoff_delay(jittery, 1) <= 1.0


def test_next_delay_prefers_retry_after() -> None:
    policy = RetryPolicy(initial_delay=0.5, jitter=False)
    assert next_delay(policy, http_error(503, retry_after=2.0), 1) == 2.0
    assert next_delay(policy, http_error(503), 1) == 0.5


def test_policy_validation_and_repr() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)
    assert "max_attempts=3" in repr(RetryPolicy())
    with pytest.raises(TypeError):
        RetryPolicy(3)  # type: ignore[misc]


class Flaky:
    """An operation that fails with the given errors, then succeeds."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.raised: list[BaseException] = []
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            self.raised.append(self.failures.pop(0))
            raise self.raised[-1]
        return "ok"


async def test_loop_retries_then_succeeds() -> None:
    operation = Flaky(http_error(503), exc.ConnectError("refused"))
    assert await call_with_retry(FAST, operation) == "ok"
    assert operation.calls == 3


async def test_loop_gives_up_with_last_error_and_attempt_count() -> None:
    operation = Flaky(*(http_error(503) for _ in range(10)))
    with pytest.raises(exc.ServiceUnavailable) as info:
        await call_with_retry(FAST, operation)
    assert operation.calls == 4
    assert info.value.attempts == 4
    assert all(getattr(e, "attempts", 1) == 1 for e in operation.raised)  # none was changed
    assert info.value is not operation.raised[-1] and info.value.message == "HTTP 503"


async def test_loop_does_not_retry_500_or_when_disabled() -> None:
    operation = Flaky(http_error(500))
    with pytest.raises(exc.InternalServerError) as info:
        await call_with_retry(FAST, operation)
    assert (operation.calls, info.value.attempts) == (1, 1)
    operation = Flaky(http_error(503))
    with pytest.raises(exc.ServiceUnavailable):
        await call_with_retry(None, operation)
    assert operation.calls == 1


async def test_loop_stops_on_non_retryable_after_retryable() -> None:
    operation = Flaky(http_error(503), http_error(400))
    with pytest.raises(exc.InvalidArgument) as info:
        await call_with_retry(FAST, operation)
    assert (operation.calls, info.value.attempts) == (2, 2)


async def test_loop_honours_retry_after_wait() -> None:
    operation = Flaky(http_error(503, retry_after=0.3))
    started = time.monotonic()
    assert await call_with_retry(FAST, operation) == "ok"
    assert time.monotonic() - started >= 0.29


async def test_deadline_stops_retrying() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=0.05, jitter=False, deadline=0.2)
    operation = Flaky(*(http_error(503) for _ in range(100)))
    with pytest.raises(exc.ServiceUnavailable):
        await call_with_retry(policy, operation)
    assert 2 <= operation.calls <= 5


async def test_cancellation_is_not_swallowed() -> None:
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    task = asyncio.ensure_future(call_with_retry(FAST, slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
