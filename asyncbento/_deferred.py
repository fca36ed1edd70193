"""Calls made on an ``AsyncHTTPClient`` before it has read the service's schema.

BentoML's documentation also shows the async client used without ``async with``::

    client = AsyncHTTPClient(url)
    print(await client.summarize(text="..."))
    await client.close()

Before set-up the client cannot know which endpoints exist, so ``client.summarize`` is a
:class:`DeferredEndpoint`: awaiting one of its calls (or iterating it, for a stream) first sets
the client up, exactly as ``async with`` would, and then makes the real call. Once set up, the
client's attributes are the real endpoint methods and none of this is involved.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

from .exceptions import NotFound

if TYPE_CHECKING:
    from ._client import AsyncEndpointMethod, AsyncHTTPClient


class DeferredEndpoint:
    """An endpoint asked for by name before the client was set up."""

    __slots__ = ("__name__", "_client")

    def __init__(self, client: AsyncHTTPClient, name: str) -> None:
        self._client = client
        self.__name__ = name

    def __repr__(self) -> str:
        return f"<endpoint {self.__name__} (the client is not set up yet)>"

    def __call__(self, *args: Any, **kwargs: Any) -> DeferredCall:
        return DeferredCall(self._client, self.__name__, None, args, kwargs)

    def events(self, *args: Any, **kwargs: Any) -> DeferredCall:
        """Server-Sent Events of a stream endpoint (see ``AsyncEndpointMethod.events``)."""
        return DeferredCall(self._client, self.__name__, "events", args, kwargs)

    def __getattr__(self, name: str) -> Any:
        # submit / get_status / get / cancel / retry: the real method's, once set up.
        if name not in _TASK_METHODS:
            raise AttributeError(name)

        async def deferred(*args: Any, **kwargs: Any) -> Any:
            method = await endpoint_after_setup(self._client, self.__name__)
            return await getattr(method, name)(*args, **kwargs)

        deferred.__name__ = name
        return deferred


_TASK_METHODS = frozenset({"submit", "get_status", "get", "cancel", "retry"})


async def endpoint_after_setup(
    client: AsyncHTTPClient, name: str, *, by_call: bool = False
) -> AsyncEndpointMethod:
    """Set the client up if needed and return its method for ``name``.

    Raises:
        AttributeError: the service has no endpoint of that name (asked for as an attribute).
        NotFound: the same, asked for with ``client.call(name)``.
    """
    await client._setup()
    method = client._methods.get(name)
    if method is None:
        known = ", ".join(sorted(client._methods)) or "none"
        if by_call:
            raise NotFound(f"endpoint {name!r} not found in the service")
        raise AttributeError(
            f"{type(client).__name__!r} has no endpoint or attribute {name!r} "
            f"(the service's endpoints: {known})"
        )
    return method


class DeferredCall:
    """A call of a :class:`DeferredEndpoint`: await it, or ``async for`` over a stream."""

    __slots__ = ("_args", "_by_call", "_client", "_kwargs", "_name", "_operation")

    def __init__(
        self,
        client: AsyncHTTPClient,
        name: str,
        operation: str | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        by_call: bool = False,
    ) -> None:
        self._client = client
        self._name = name
        self._operation = operation
        self._args = args
        self._kwargs = kwargs
        self._by_call = by_call

    async def _start(self) -> Any:
        method = await endpoint_after_setup(self._client, self._name, by_call=self._by_call)
        target = method if self._operation is None else getattr(method, self._operation)
        return target(*self._args, **self._kwargs)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        result = await self._start()
        if inspect.isawaitable(result):
            return await result
        await _close(result)
        raise TypeError(f"{self._name} is a stream endpoint: iterate it with `async for`")

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncGenerator[Any, None]:
        stream = await self._start()
        if inspect.isawaitable(stream):
            if inspect.iscoroutine(stream):
                stream.close()
            raise TypeError(f"{self._name} is not a stream endpoint: `await` it")
        try:
            async for item in stream:
                yield item
        finally:
            await _close(stream)


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def after_setup(
    client: AsyncHTTPClient, make: Callable[[], AsyncIterator[Any]]
) -> AsyncGenerator[Any, None]:
    """The iterator ``make()`` returns once the client is set up (for ``imap``)."""
    await client._setup()
    iterator = make()
    try:
        async for item in iterator:
            yield item
    finally:
        await _close(iterator)
