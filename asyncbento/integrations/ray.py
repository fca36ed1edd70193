"""Distributed batch calls on Ray Data: a callable class for ``Dataset.map_batches``.

Each actor of the pool holds one client for its lifetime (a ``SyncHTTPClient``, i.e. one
``AsyncHTTPClient`` on its own background loop) and sends the rows of every batch through
``client.map`` with bounded concurrency. Rows keep their order; none is dropped: a failed
row gets ``None`` in the output column and its typed error in the error column::

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

from collections.abc import Mapping
from typing import Any

from .._config import DEFAULT_RETRY, DEFAULT_TOTAL, RetryPolicy, TimeoutLike
from .._endpoints import resolve
from .._sync import SyncHTTPClient
from ..exceptions import BentoMLException

__all__ = ["BentoMLBatchCaller", "error_record"]


def error_record(error: BaseException) -> dict[str, Any]:
    """A failed row's error: its type, error code (if any) and message."""
    code = int(error.error_code) if isinstance(error, BentoMLException) else None
    return {"type": type(error).__name__, "error_code": code, "message": str(error)}


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
        concurrency: Calls in flight at once, per actor.
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
        token: str | None = None,
        timeout: TimeoutLike = DEFAULT_TOTAL,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        server_ready_timeout: float | None = None,
    ) -> None:
        self._client = SyncHTTPClient(
            url,
            token=token,
            timeout=timeout,
            retry=retry,
            server_ready_timeout=server_ready_timeout,
        )
        try:
            self._endpoint = resolve(self._client._async, endpoint).endpoint
        except BaseException:
            self._client.close()
            raise
        self._name = endpoint
        self._columns = dict(columns) if columns is not None else None
        self._output_column = output_column
        self._error_column = error_column
        self._concurrency = concurrency

    def _mapping(self, available: list[str]) -> dict[str, str]:
        if self._columns is not None:
            missing = [c for c in self._columns.values() if c not in available]
            if missing:
                raise KeyError(f"columns {missing} are not in the dataset {available}")
            return self._columns
        if self._endpoint.root is not None:
            if len(available) != 1:
                raise ValueError(
                    f"{self._name} takes one root input: pass columns={{'value': <column>}}"
                )
            return {"value": available[0]}
        return {name: name for name in self._endpoint.params if name in available}

    def __call__(self, batch: Any) -> Any:
        """Call the endpoint for every row; returns the batch with the two new columns.

        Accepts Ray's ``pandas`` batches (a DataFrame) and ``numpy`` / default batches (a
        dict of arrays), and returns the same kind.
        """
        is_frame = hasattr(batch, "to_dict") and hasattr(batch, "columns")
        available = [str(c) for c in (batch.columns if is_frame else batch.keys())]
        mapping = self._mapping(available)
        size = len(batch) if is_frame else len(next(iter(batch.values()), []))
        values = {param: _column(batch, column) for param, column in mapping.items()}
        if self._endpoint.root is not None:
            inputs: list[Any] = list(values["value"])
        else:
            inputs = [
                {param: _plain(column[i]) for param, column in values.items()} for i in range(size)
            ]
        results = self._client.map(
            self._name, inputs, concurrency=self._concurrency, return_exceptions=True
        )
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

    def __del__(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()


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
