"""Task endpoints (``@bentoml.task``): their HTTP operations, the task handle and its statuses.

:class:`TaskOperations` holds the five HTTP operations (submit, status, get, cancel, retry);
every endpoint method has them (``_endpoints.py``), and they refuse to run on a plain endpoint.
An :class:`AsyncTask` is a task id bound to its endpoint method, plus ``wait()``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec
from yarl import URL

from ._body import Body, build_body
from ._codec import Reader, read_as, read_nothing
from ._pace import PollPace
from ._schema import Endpoint
from .exceptions import (
    BentoMLException,
    ResponseDecodeError,
    TaskCancelNotSupported,
    TaskFailed,
    TaskNotCompleted,
    TaskTimeout,
)

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")


class ResultStatus(str, enum.Enum):
    """A task's status, with the values BentoML's server uses.

    The names servers before BentoML 1.4.14 answered are read as today's members:
    ``ResultStatus("success") is ResultStatus.COMPLETED`` (likewise ``failure`` -> ``FAILED``,
    ``cancelled`` -> ``CANCELED``).
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        """True once the task will not change any more on its own."""
        return self in (ResultStatus.COMPLETED, ResultStatus.FAILED, ResultStatus.CANCELED)

    @classmethod
    def _missing_(cls, value: object) -> ResultStatus | None:
        return _OLD_STATUS_NAMES.get(value) if isinstance(value, str) else None


# Renamed in BentoML 1.4.14; older servers still answer these.
_OLD_STATUS_NAMES = {
    "success": ResultStatus.COMPLETED,
    "failure": ResultStatus.FAILED,
    "cancelled": ResultStatus.CANCELED,
}


_FIXED_PACE = PollPace()


class _Refusals:
    """One task's requests that failed in a row (refused, mostly), and since when."""

    __slots__ = ("count", "since")

    def __init__(self) -> None:
        self.count, self.since = 0, 0.0

    def add(self) -> int:
        """Count one more; returns the count."""
        if not self.count:
            self.since = time.monotonic()
        self.count += 1
        return self.count

    def seconds(self) -> float:
        """Seconds since the first of them."""
        return time.monotonic() - self.since


class TaskClient(Protocol):
    """What the task operations need of a client (``AsyncHTTPClient`` provides it)."""

    async def _exchange(  # the client's request path: send, check the status, read with handle
        self,
        verb: str,
        url: URL,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        resend_safe: bool = True,
        params: Mapping[str, str] | None = None,
        body: Body | None = None,
    ) -> T: ...

    def _output_reader(self, endpoint: Endpoint) -> Reader: ...


class TaskAnswer(msgspec.Struct):
    """What a task's ``submit``, ``retry`` and ``status`` routes answer (other fields ignored)."""

    task_id: str
    status: str | None = None


_TASK_ANSWER = msgspec.json.Decoder(TaskAnswer)
TASK_OPERATIONS = ("submit", "status", "get", "cancel", "retry")


async def read_task_answer(response: aiohttp.ClientResponse) -> TaskAnswer:
    """A task route's answer; an empty ``task_id`` is a decode error."""
    answer: TaskAnswer = await read_as(response, _TASK_ANSWER, "a task answer")
    if not answer.task_id:
        raise ResponseDecodeError(f"the server's task answer has an empty task_id: {answer!r}")
    return answer


class TaskOperations:
    """The HTTP operations of a task endpoint, mixed into every endpoint method."""

    endpoint: Endpoint
    _client: TaskClient
    _task_urls: dict[str, URL]
    __name__: str

    def _task_url(self, operation: str) -> URL:
        if not self.endpoint.is_task:
            raise TypeError(f"{self.__name__} is not a task endpoint")
        return self._task_urls[operation]

    async def submit(self, *args: Any, **kwargs: Any) -> AsyncTask:
        """Submit a task with the endpoint's arguments and return its handle.

        Returns:
            An :class:`AsyncTask` for the new task.

        Raises:
            TypeError: an unknown, missing or duplicate argument (nothing is sent).
            BentoMLException: the server refused the submission (never re-sent unless the
                failure proves the server did not take it).
        """
        url = self._task_url("submit")
        body = await build_body(self.endpoint, self.endpoint.bind(args, kwargs))
        answer = await self._client._exchange(
            "POST", url, read_task_answer, body=body, resend_safe=False
        )
        return AsyncTask(answer.task_id, self)

    async def get_status(self, task_id: str) -> ResultStatus:
        """The status of the task ``task_id``.

        Raises:
            NotFound: no task has that id.
        """
        answer = await self._client._exchange(
            "GET", self._task_url("status"), read_task_answer, params={"task_id": task_id}
        )
        try:
            return ResultStatus(answer.status)
        except ValueError:
            raise ResponseDecodeError(f"unknown task status {answer.status!r}") from None

    async def get(self, task_id: str) -> Any:
        """The output of the finished task ``task_id``, decoded as a direct call's would be.

        Raises:
            TaskNotCompleted: the task is still running.
            BentoMLException: the task failed: its own error, typed by status.
        """
        return await self._client._exchange(
            "GET",
            self._task_url("get"),
            self._client._output_reader(self.endpoint),
            params={"task_id": task_id},
        )

    async def cancel(self, task_id: str) -> None:
        """Ask the server to cancel the task ``task_id``.

        Raises:
            TaskCancelNotSupported: the server cannot cancel tasks (BentoML's local server).
        """
        try:
            await self._client._exchange(
                "PUT", self._task_url("cancel"), read_nothing, params={"task_id": task_id}
            )
        except BentoMLException as exc:
            if exc.status == 400 and "not supported" in exc.message:
                raise TaskCancelNotSupported(
                    f"this server does not support cancelling tasks ({exc.message}); "
                    "the task may keep running to the end",
                    body=exc.body,
                    request_id=exc.request_id,
                    trace_id=exc.trace_id,
                ) from exc
            raise

    async def retry(self, task_id: str) -> AsyncTask:
        """Run the stored input of task ``task_id`` again, as a new task.

        Returns:
            An :class:`AsyncTask` for the new task.
        """
        answer = await self._client._exchange(
            "POST",
            self._task_url("retry"),
            read_task_answer,
            params={"task_id": task_id},
            resend_safe=False,
        )
        return AsyncTask(answer.task_id, self)


class AsyncTask:
    """A submitted task. ``await task.result()`` waits for it and returns its output."""

    __slots__ = ("_endpoint", "id")

    def __init__(self, task_id: str, endpoint: TaskOperations) -> None:
        self.id = task_id
        self._endpoint = endpoint

    def __repr__(self) -> str:
        return f"AsyncTask(id={self.id!r}, endpoint={self._endpoint.__name__!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncTask) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def get_status(self) -> ResultStatus:
        """The task's current status."""
        return await self._endpoint.get_status(self.id)

    async def get(self) -> Any:
        """The task's output, decoded as a direct call's would be.

        Raises:
            TaskNotCompleted: the task has not finished yet.
            BentoMLException: the task failed (its own error, typed by status).
        """
        return await self._endpoint.get(self.id)

    async def cancel(self) -> None:
        """Ask the server to cancel the task.

        Raises:
            TaskCancelNotSupported: the server cannot cancel tasks (BentoML's local server).
        """
        await self._endpoint.cancel(self.id)

    async def retry(self) -> AsyncTask:
        """Run the task's stored input again, as a new task."""
        return await self._endpoint.retry(self.id)

    async def wait(self, timeout: float | None = None) -> Any:
        """Wait until the task finishes and return its output (same as :meth:`result`).

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Raises:
            TaskTimeout: the task did not finish in time (also a ``TimeoutError``).
            BentoMLException: the task failed, with its own error.
        """
        return await self._wait(timeout, _FIXED_PACE)

    async def _wait(self, timeout: float | None, pace: PollPace) -> Any:
        """:meth:`wait`, polling on ``pace``'s schedule (a batch's tasks share a learning one)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, polls, status = pace.first(), 0, ResultStatus.PENDING
        refused = _Refusals()
        while True:
            if deadline is not None:  # a learned first poll may lie beyond the timeout
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(pause)
            polls += 1
            try:
                status = await self.get_status()
            except BentoMLException as error:
                pause = pace.after_refusal(error, refused.add(), polls, refused.seconds())
            else:
                refused = _Refusals()
                if status.finished:
                    pace.finished(polls)
                    return await self._output(status, pace)
                pause = pace.after_running(pause, polls)
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskTimeout(f"task {self.id} is still {status.value} after {timeout} seconds")

    async def _output(self, status: ResultStatus, pace: PollPace) -> Any:
        """The finished task's output. A completed task's ``get`` refused for load is sent
        again if ``pace`` says so; a failed task's error answer is its own, whatever its
        status."""
        refused = _Refusals()
        while True:
            try:
                output = await self.get()
            except TaskNotCompleted:
                # BentoML's local server marks a task canceled but lets it run on (PROTOCOL §6).
                raise TaskFailed(f"task {self.id} was {status.value}") from None
            except BentoMLException as error:
                if status is not ResultStatus.COMPLETED:
                    raise
                pause = pace.after_refusal(error, refused.add(), 0, refused.seconds())
                await asyncio.sleep(pause)
                continue
            if status is not ResultStatus.COMPLETED:
                raise TaskFailed(f"task {self.id} ended as {status.value} without an error answer")
            return output

    async def result(self, timeout: float | None = None) -> Any:
        """Wait until the task finishes and return its output, or raise its error."""
        return await self.wait(timeout)
