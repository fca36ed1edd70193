"""Distributed batch calls on Ray Data: an async callable class for ``Dataset.map_batches``.

Each actor of the pool runs the async client natively on the event loop Ray Data gives async
callable classes, and feeds the rows of *every* batch it is given into one batch engine with one
adaptive window. Ray Data hands an actor several batches at once (four by default), so while the
slowest row of one batch is still in flight, the rows of the next are already being sent: an
actor never waits for a batch's last row before starting on new work, and its window (the most
calls in flight, ``concurrency``, shrinking while the service refuses calls) covers all of them.

Rows keep their order within a batch; none is dropped: a failed row gets ``None`` in the output
column and its typed error in the error column::

    import ray
    from asyncbento.integrations.ray import BentoMLBatchCaller

    dataset = ray.data.read_json("inputs.jsonl")
    results = dataset.map_batches(
        BentoMLBatchCaller,
        fn_constructor_kwargs={"url": "http://bento:3000", "endpoint": "summarize"},
        concurrency=2,          # actors
        batch_size=256,
        batch_format="pandas",
    )

Install with ``pip install 'asyncbento[ray]'``. Nothing here imports Ray itself: Ray imports
this class in its workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._batch import Call, make_window, run_batch
from .._client import AsyncHTTPClient
from .._config import DEFAULT_RETRY, DEFAULT_TOTAL, RetryPolicy, TimeoutLike
from .._endpoints import resolve
from .._limiter import Adaptive
from .._overload import endpoint_batch
from .._portal import get_portal
from .._records import error_record

__all__ = ["BentoMLBatchCaller", "error_record"]


class BentoMLBatchCaller:
    """Calls a BentoML endpoint for each row of a Ray Data batch.

    Args:
        url: The BentoML service (or the load balancer in front of several).
        endpoint: The endpoint's name.
        columns: Endpoint parameter -> column name. Default: every column named like one of
            the endpoint's parameters. For a root-input endpoint, map ``"value"`` to the
            column that holds the input.
        output_column: Where each row's output goes (``None`` for failed rows).
        error_column: Where each row's error goes (``None`` for rows that succeeded).
        concurrency: The most calls in flight at once, per actor, across its batches.
        adaptive: Shrink the window while the service refuses calls (429/503), re-sending
            the refused rows; ``False`` keeps ``concurrency`` calls in flight.
        token: Bearer token.
        timeout: Seconds per call, or an :class:`asyncbento.Timeout`.
        retry: A :class:`asyncbento.RetryPolicy`, or ``None``.
        server_ready_timeout: Seconds each actor waits for the server at start-up.

    Raises:
        EndpointNotFound: the service has no endpoint ``endpoint`` (a ``NotFound``).
    """

    def __init__(
        self,
        url: str,
        endpoint: str,
        *,
        columns: Mapping[str, str] | None = None,
        output_column: str = "output",
        error_column: str = "error",
        concurrency: int = 32,
        adaptive: bool | Adaptive = True,
        token: str | None = None,
        timeout: TimeoutLike = DEFAULT_TOTAL,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        server_ready_timeout: float | None = None,
    ) -> None:
        make_window(concurrency, adaptive)  # bad values fail here, before any batch
        options: dict[str, Any] = {
            "token": token,
            "timeout": timeout,
            "retry": retry,
            "server_ready_timeout": server_ready_timeout,
        }
        # Ray makes the caller outside the loop its batches run on: check the endpoint now
        # with a short-lived client on the portal's loop, so that a wrong name fails at once.
        get_portal().call(_check_endpoint(AsyncHTTPClient(url, **options), endpoint))
        self._client = AsyncHTTPClient(url, **options)
        self._name = endpoint
        self._columns = dict(columns) if columns is not None else None
        self._output_column = output_column
        self._error_column = error_column
        self._concurrency = concurrency
        self._adaptive = adaptive
        self._feed: _Feed | None = None
        self._starting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def _started(self) -> _Feed:
        """This actor's feed on the running loop (made on first use, or after a change of loop)."""
        loop = asyncio.get_running_loop()
        if self._feed is not None and self._feed.loop is loop:
            return self._feed
        if self._starting is None or self._starting[0] is not loop:
            self._starting = (loop, asyncio.Lock())  # a lock belongs to one loop
        async with self._starting[1]:
            if self._feed is None or self._feed.loop is not loop:
                await self._client.__aenter__()
                call, _ = endpoint_batch(self._client, self._name, self._adaptive)
                self._feed = _Feed(call, make_window(self._concurrency, self._adaptive))
        return self._feed

    def _mapping(self, available: list[str]) -> dict[str, str]:
        endpoint = self._client.endpoints[self._name]
        if self._columns is not None:
            missing = [c for c in self._columns.values() if c not in available]
            if missing:
                raise KeyError(f"columns {missing} are not in the dataset {available}")
            return self._columns
        if endpoint.root is not None:
            if len(available) != 1:
                raise ValueError(
                    f"{self._name} takes one root input: pass columns={{'value': <column>}}"
                )
            return {"value": available[0]}
        return {name: name for name in endpoint.params if name in available}

    async def __call__(self, batch: Any) -> Any:
        """Call the endpoint for every row; returns the batch with the two new columns.

        Accepts Ray's ``pandas`` batches (a DataFrame) and ``numpy`` / default batches (a
        dict of arrays), and returns the same kind.
        """
        feed = await self._started()
        is_frame = hasattr(batch, "to_dict") and hasattr(batch, "columns")
        available = [str(c) for c in (batch.columns if is_frame else batch.keys())]
        mapping = self._mapping(available)
        size = len(batch) if is_frame else len(next(iter(batch.values()), []))
        values = {param: _column(batch, column) for param, column in mapping.items()}
        if self._client.endpoints[self._name].root is not None:
            inputs: list[Any] = list(values["value"])
        else:
            inputs = [
                {param: _plain(column[i]) for param, column in values.items()} for i in range(size)
            ]
        results = await asyncio.gather(*map(feed.submit, inputs), return_exceptions=True)
        return self._with_results(batch, is_frame, results)

    def _with_results(self, batch: Any, is_frame: bool, results: list[Any]) -> Any:
        outputs = [None if isinstance(r, BaseException) else r for r in results]
        errors = [error_record(r) if isinstance(r, BaseException) else None for r in results]
        if is_frame:
            batch = batch.copy()
            batch[self._output_column] = outputs
            batch[self._error_column] = errors
            return batch
        import numpy

        new = dict(batch)
        new[self._output_column] = _object_array(numpy, outputs)
        new[self._error_column] = _object_array(numpy, errors)
        return new


async def _check_endpoint(client: AsyncHTTPClient, endpoint: str) -> None:
    async with client:
        resolve(client, endpoint)


class _Feed:
    """One endless batch per actor: rows of every Ray batch go through one engine and window.

    :meth:`submit` queues a row and returns a future for its result; the engine pulls rows from
    the queue as its window allows and each result resolves its row's future.
    """

    def __init__(self, call: Call, window: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._task = self.loop.create_task(self._run(call, window))

    def submit(self, item: Any) -> asyncio.Future[Any]:
        """Queue one row; the future gets its result, or its error as an exception."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._queue.put_nowait((item, future))
        return future

    async def _rows(self) -> AsyncIterator[Any]:
        index = 0
        while True:
            item, future = await self._queue.get()
            self._futures[index] = future
            index += 1
            yield item

    async def _run(self, call: Call, window: Any) -> None:
        try:
            async for index, value in run_batch(
                call, self._rows(), window=window, return_exceptions=True
            ):
                future = self._futures.pop(index)
                if future.done():
                    continue  # its batch was cancelled
                if isinstance(value, BaseException):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        except BaseException as error:  # the engine itself failed: no row may wait forever
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(error)
            raise


def _column(batch: Any, name: str) -> list[Any]:
    column = batch[name]
    return list(column.tolist() if hasattr(column, "tolist") else column)


def _plain(value: Any) -> Any:
    """numpy scalars from Ray batches as plain Python values."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _object_array(numpy: Any, values: list[Any]) -> Any:
    array = numpy.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = value
    return array
