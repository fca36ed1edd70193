"""The client's side of the batch engine's overload protocol.

The engine (``_batch.py``) knows nothing of HTTP; this module says which failures mean "the
service is overloaded" and how a batch's calls are retried:

- **Refusals** (429 and 503 answers, connections refused or timed out while connecting): the
  service did no work, so the engine shrinks its window, honours ``Retry-After`` and sends the
  input again later. They are not attempts against the user's retry policy: a batch's calls run
  under that policy *minus* the statuses 429 and 503 (:func:`batch_retry`), so that a refusal
  reaches the engine at once instead of holding a place in the window through backoff sleeps.
  Everything else the policy retries (502, 504, dropped connections) it still retries.
- **Timeouts after sending** shrink the window too, but the input fails with its timeout, as
  the retry policy would have it: the service may have done the work.

Connection failures are retried by the policy first (it always retries them); the engine sees
them once the policy gives up, and re-queues the input.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any, Protocol

from ._batch import Call, Overload
from ._config import OVERLOAD_STATUSES, RetryPolicy
from ._endpoints import (
    AsyncEndpointMethod,
    EndpointClient,
    batch_arguments,
    batch_call,
    resolve,
    task_batch_call,
)
from ._limiter import Adaptive, Window
from ._pace import LearnedPace
from ._tasks import AsyncTask
from .exceptions import BentoMLException, ConnectError, ConnectTimeout, TimeoutException


class _Options(Protocol):
    retry: RetryPolicy | None


class BatchClient(EndpointClient, Protocol):
    """What a batch needs of its client (``AsyncHTTPClient`` provides it)."""

    @property
    def _options(self) -> _Options: ...

    def with_options(self, *, retry: RetryPolicy | None) -> BatchClient: ...


_SUBMIT_TRIES = 4  # a task's submission: tries before a refusal reaches the engine
_SUBMIT_PAUSE = 0.02  # the first pause between them (doubles)


def overload_of(error: BaseException) -> Overload | None:
    """``error`` as the engine's :class:`Overload`, or ``None`` if it says nothing of load."""
    if not isinstance(error, BentoMLException):
        return None
    if isinstance(error, (ConnectError, ConnectTimeout)):
        return Overload(error, resend=True)  # nothing was sent
    if error.status in OVERLOAD_STATUSES:
        return Overload(error, resend=True, retry_after=error.retry_after)
    if isinstance(error, TimeoutException):
        return Overload(error, resend=False)
    return None


def raise_overload(error: BentoMLException) -> None:
    """Raise ``error`` as an :class:`Overload` if it is one; otherwise return."""
    overload = overload_of(error)
    if overload is not None:
        raise overload from error


def refusing(call: Call) -> Call:
    """``call`` raising :class:`Overload` around the failures that mean overload."""

    async def wrapped(item: Any) -> Any:
        try:
            return await call(item)
        except BentoMLException as error:
            raise_overload(error)
            raise

    return wrapped


def refusing_task(method: AsyncEndpointMethod, timeout: float | None, window: Window) -> Call:
    """Submit one input as a task (refusals raised as :class:`Overload`) and wait for it.

    Only the submission can be refused for overload: once the task exists, sending the input
    again would start a second one. The wait's polls go through ``method`` too (the batch's
    client, whose retry policy leaves 429/503 alone) and a poll refused for load is waited
    out on a pace shared by the batch's tasks (:class:`LearnedPace`: about 10 ms, growing),
    not on the retry policy's backoff of half a second and more: a BentoML task holds a
    request slot until it ends, so the service refuses polls while its slots are full of
    running tasks, and frees one as soon as a task ends. Refused polls are counted in
    ``window.refused``; polls refused for over ``window.max_stall`` seconds in a row (the
    batch's overload budget) fail the input with :class:`BatchOverloaded`. Other failures are
    the input's.

    Raises:
        TypeError: ``method`` is not a task endpoint (raised at once, before any input).
    """
    task_batch_call(method, timeout)  # the same checks as a plain task batch
    split = batch_arguments(method)
    pace = LearnedPace(
        wait_out_refusals=True, budget=window.max_stall, on_refusal=window.count_refusal
    )

    async def call(item: Any) -> Any:
        args, kwargs = split(item)
        task = await _submit(method, args, kwargs)
        return await task._wait(timeout, pace)

    return call


async def _submit(method: AsyncEndpointMethod, args: Any, kwargs: Any) -> AsyncTask:
    """Submit a task; a refusal is tried again a few times after short pauses, then raised.

    A BentoML task holds one of the server's request slots until it ends, and so do polls
    while they are answered: a refused submission often means that a slot frees within
    milliseconds (a task ending, a poll answered). So it is sent again soon (in its place in
    the window) a few times before the refusal reaches the engine and shrinks the window.
    """
    pause = _SUBMIT_PAUSE
    for attempt in range(_SUBMIT_TRIES):
        try:
            return await method.submit(*args, **kwargs)
        except BentoMLException as error:
            overload = overload_of(error)
            if overload is None:
                raise
            if not overload.resend or error.retry_after is not None or attempt + 1 == _SUBMIT_TRIES:
                raise overload from error
        await asyncio.sleep(random.uniform(pause / 2, pause))
        pause *= 2
    raise AssertionError("unreachable")


def batch_retry(policy: RetryPolicy | None) -> RetryPolicy | None:
    """``policy`` without the overload statuses, which the adaptive engine handles itself."""
    if policy is None or not policy.retry_statuses & OVERLOAD_STATUSES:
        return policy
    return replace(policy, retry_statuses=policy.retry_statuses - OVERLOAD_STATUSES)


def batch_client(client: BatchClient, adaptive: bool | Adaptive) -> BatchClient:
    """The client a batch's calls go through: a view under :func:`batch_retry` when adaptive."""
    if adaptive is False:
        return client
    policy = client._options.retry
    retry = batch_retry(policy)
    return client if retry is policy else client.with_options(retry=retry)


def endpoint_batch(
    client: BatchClient, endpoint: Any, adaptive: bool | Adaptive
) -> tuple[Call, str]:
    """The engine's call for ``map`` / ``imap`` of ``endpoint``, and the endpoint's name."""
    method = resolve(batch_client(client, adaptive), endpoint)
    call = batch_call(method)
    return (call if adaptive is False else refusing(call)), method.__name__


def task_batch(
    client: BatchClient, endpoint: Any, window: Window, timeout: float | None
) -> tuple[Call, str]:
    """The engine's call for ``map_tasks`` of ``endpoint`` in ``window``, and the endpoint's
    name."""
    if not window.adaptive:
        own = resolve(client, endpoint)
        return task_batch_call(own, timeout), own.__name__
    method = resolve(batch_client(client, True), endpoint)
    return refusing_task(method, timeout, window), method.__name__
