"""Task endpoints (``@bentoml.task``): the task handle and its status values.

The HTTP side (submit, status, get, cancel, retry) lives on the endpoint method in
``_client.py``; an :class:`AsyncTask` is a task id bound to that endpoint, plus ``wait()``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import TYPE_CHECKING, Any

from .exceptions import TaskFailed, TaskNotCompleted, TaskTimeout

if TYPE_CHECKING:
    from ._client import AsyncEndpointMethod


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


# Polling: start quick (tasks are often short), back off to a cap.
POLL_INITIAL = 0.05
POLL_MULTIPLIER = 1.5
POLL_MAX = 1.0


class AsyncTask:
    """A submitted task. ``await task.result()`` waits for it and returns its output."""

    __slots__ = ("_endpoint", "id")

    def __init__(self, task_id: str, endpoint: AsyncEndpointMethod) -> None:
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
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_INITIAL
        while True:
            status = await self.get_status()
            if status.finished:
                break
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TaskTimeout(
                        f"task {self.id} is still {status.value} after {timeout} seconds"
                    )
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * POLL_MULTIPLIER, POLL_MAX)
        try:
            output = await self.get()
        except TaskNotCompleted:
            # BentoML's local server marks a task canceled but lets it run on (PROTOCOL §6).
            raise TaskFailed(f"task {self.id} was {status.value}") from None
        if status is not ResultStatus.COMPLETED:
            raise TaskFailed(f"task {self.id} ended as {status.value} without an error answer")
        return output

    async def result(self, timeout: float | None = None) -> Any:
        """Wait until the task finishes and return its output, or raise its error."""
        return await self.wait(timeout)
