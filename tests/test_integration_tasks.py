"""Integration: task endpoints of a real `bentoml serve`, through both clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncbento import ResultStatus
from asyncbento import exceptions as exc


async def test_submit_status_get(client: Any) -> None:
    task = await client.slow_square.submit(x=7, delay=0.3)
    assert isinstance(task.id, str) and len(task.id) == 32
    status = await task.get_status()
    assert status in (ResultStatus.IN_PROGRESS, ResultStatus.COMPLETED)
    assert status.value in ("in_progress", "completed")
    with pytest.raises(exc.TaskNotCompleted) as info:
        await task.get()
    assert isinstance(info.value, exc.InvalidArgument)
    assert await task.result(timeout=10) == {"x": 7, "square": 49}
    assert await task.get_status() is ResultStatus.COMPLETED
    assert await task.get() == {"x": 7, "square": 49}


async def test_positional_submit_and_endpoint_level_forms(client: Any) -> None:
    task = await client.slow_square.submit(5, 0.05)
    assert await task.wait(timeout=10) == {"x": 5, "square": 25}
    assert await client.slow_square.get_status(task.id) is ResultStatus.COMPLETED
    assert await client.slow_square.get(task.id) == {"x": 5, "square": 25}
    again = await client.slow_square.retry(task.id)
    assert again.id != task.id
    assert await again.result(timeout=10) == {"x": 5, "square": 25}


async def test_failed_task_raises_its_own_error(client: Any) -> None:
    task = await client.slow_square.submit(x=-1, delay=0.0)
    with pytest.raises(exc.InvalidArgument) as info:
        await task.result(timeout=10)
    assert "x must be >= 0" in info.value.message
    assert await task.get_status() is ResultStatus.FAILED


async def test_invalid_input_fails_the_task_not_the_submit(client: Any) -> None:
    task = await client.slow_square.submit(x="nope")
    with pytest.raises(exc.InvalidArgument) as info:
        await task.result(timeout=10)
    assert "validation error" in info.value.message


async def test_wait_times_out(client: Any) -> None:
    task = await client.slow_square.submit(x=3, delay=3.0)
    with pytest.raises(exc.TaskTimeout) as info:
        await task.wait(timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert await task.result(timeout=15) == {"x": 3, "square": 9}


async def test_retry_returns_a_new_task(client: Any) -> None:
    task = await client.slow_square.submit(x=-2, delay=0.0)
    with pytest.raises(exc.InvalidArgument):
        await task.result(timeout=10)
    retried = await task.retry()
    assert retried.id != task.id
    with pytest.raises(exc.InvalidArgument):
        await retried.result(timeout=10)


async def test_cancel_on_local_server_says_so(client: Any) -> None:
    task = await client.slow_square.submit(x=2, delay=1.0)
    with pytest.raises(exc.TaskCancelNotSupported) as info:
        await task.cancel()
    assert "does not support cancelling" in info.value.message
    # The local server marks the task canceled anyway, and lets it run on.
    assert await task.get_status() is ResultStatus.CANCELED
    with pytest.raises(exc.TaskFailed, match="canceled"):
        await task.result(timeout=10)
    await asyncio.sleep(1.5)
    assert await task.get_status() is ResultStatus.COMPLETED
    assert await task.get() == {"x": 2, "square": 4}


async def test_unknown_task_id_is_not_found(client: Any) -> None:
    with pytest.raises(exc.NotFound):
        await client.slow_square.get_status("0" * 32)


async def test_submit_binding_errors(client: Any) -> None:
    with pytest.raises(TypeError):
        await client.slow_square.submit(y=1)


async def test_image_task_output(client: Any) -> None:
    task = await client.task_image.submit(size=8)
    image = await task.result(timeout=10)
    assert image.size == (8, 8)


async def test_many_tasks_concurrently(client: Any) -> None:
    tasks = await asyncio.gather(*(client.slow_square.submit(x=i, delay=0.05) for i in range(20)))
    results = await asyncio.gather(*(t.result(timeout=20) for t in tasks))
    assert [r["square"] for r in results] == [i * i for i in range(20)]
