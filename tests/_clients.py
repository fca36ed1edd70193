"""Run every integration test through both clients.

The ``client`` fixture yields either an ``AsyncHTTPClient`` or a ``SyncHTTPClient`` seen
through :class:`SyncAsAsync`, which runs each sync call in a worker thread (as a plain
threaded program would) and makes it awaitable, so that one async test body serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, SyncHTTPClient, Task

_END = object()


def _next(iterator: Iterator[Any]) -> Any:
    return next(iterator, _END)


class _Deferred:
    """A sync call that can be awaited, or iterated with ``async for`` (streams)."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self._func, self._args, self._kwargs = func, args, kwargs

    def __await__(self) -> Any:
        return self._run().__await__()

    async def _run(self) -> Any:
        result = await asyncio.to_thread(self._func, *self._args, **self._kwargs)
        return SyncAsAsync(result) if isinstance(result, Task) else result

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        iterator = await asyncio.to_thread(self._func, *self._args, **self._kwargs)
        try:
            while (item := await asyncio.to_thread(_next, iterator)) is not _END:
                yield item
        finally:
            await asyncio.to_thread(iterator.close)

    async def aclose(self) -> None:
        """Nothing to do: the generator is closed by ``_iterate``."""


class SyncAsAsync:
    """An awaitable view of a sync object (client, endpoint method or task)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    @property
    def sync(self) -> Any:
        """The wrapped sync object."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if callable(attribute):
            return SyncAsAsync(attribute)
        return attribute

    def __call__(self, *args: Any, **kwargs: Any) -> _Deferred:
        return _Deferred(self._target, args, kwargs)

    def __repr__(self) -> str:
        return f"SyncAsAsync({self._target!r})"


async def open_client(kind: str, url: str, **options: Any) -> Any:
    """An entered client of the given kind ("async" or "sync")."""
    if kind == "async":
        return await AsyncHTTPClient(url, **options).__aenter__()
    sync = await asyncio.to_thread(SyncHTTPClient, url, **options)
    return SyncAsAsync(sync)


async def close_client(client: Any) -> None:
    """Close a client made by :func:`open_client`."""
    if isinstance(client, SyncAsAsync):
        await asyncio.to_thread(client.sync.close)
    else:
        await client.close()


@contextlib.asynccontextmanager
async def opened_client(kind: str, url: str, **options: Any) -> AsyncIterator[Any]:
    """:func:`open_client` as a context manager that closes the client."""
    opened = await open_client(kind, url, **options)
    try:
        yield opened
    finally:
        await close_client(opened)


@pytest.fixture(params=["async", "sync"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """Each integration test runs once per client."""
    return str(request.param)


@pytest.fixture
async def client(client_kind: str, example_url: str) -> AsyncIterator[Any]:
    """A client of the example service, entered and closed around the test."""
    async with opened_client(client_kind, example_url) as opened:
        yield opened
