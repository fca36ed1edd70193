"""The sync facade is generated from the async classes: nothing public is missing or differs."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, AsyncTask, SyncHTTPClient, Task
from asyncbento._endpoints import AsyncEndpointMethod
from asyncbento._sync import SyncEndpointMethod

PAIRS = [
    (AsyncHTTPClient, SyncHTTPClient),
    (AsyncTask, Task),
    (AsyncEndpointMethod, SyncEndpointMethod),
]
# Async-only protocol methods, and their sync equivalents written by hand.
NOT_MIRRORED = {"__aenter__", "__aexit__"}


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if callable(member)
        and (not name.startswith("_") or name == "__call__")
        and name not in NOT_MIRRORED
    }


@pytest.mark.parametrize(("async_class", "sync_class"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_async_method_has_its_sync_twin(async_class: type, sync_class: type) -> None:
    async_methods = public_methods(async_class)
    assert async_methods, async_class
    for name, original in async_methods.items():
        if async_class is AsyncEndpointMethod and name == "__call__":
            continue  # per endpoint: compared on a live client in test_sync_shim.py
        counterpart = getattr(sync_class, name)
        async_parameters = inspect.signature(original).parameters
        sync_parameters = inspect.signature(counterpart).parameters
        assert [(p.name, p.kind, p.default) for p in sync_parameters.values()] == [
            (p.name, p.kind, p.default) for p in async_parameters.values()
        ], name
        assert counterpart.__doc__ == original.__doc__, name
        assert counterpart.__doc__, f"{async_class.__name__}.{name} has no docstring"
    for name, member in vars(async_class).items():
        if isinstance(member, property):
            assert isinstance(vars(sync_class).get(name), property), name


def test_annotations_name_the_sync_types() -> None:
    imap = inspect.signature(SyncHTTPClient.imap)
    assert imap.return_annotation == "Iterator[tuple[int, Any]]"
    assert imap.parameters["endpoint"].annotation == "str | SyncEndpointMethod"
    checked = 0
    for sync_class in (SyncHTTPClient, Task, SyncEndpointMethod):
        for name, member in vars(sync_class).items():
            if callable(member) and hasattr(member, "__signature__"):
                signature = str(member.__signature__)
                assert "Async" not in signature, (sync_class.__name__, name, signature)
                checked += 1
    assert checked >= 20
    assert inspect.signature(Task.retry).return_annotation == "Task"
    assert inspect.signature(SyncEndpointMethod.submit).return_annotation == "Task"
    assert inspect.signature(SyncHTTPClient.map).parameters["concurrency"].default == 64
    assert SyncHTTPClient.map.__qualname__ == "SyncHTTPClient.map"


def test_with_options_gives_a_sync_view(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        view = client.with_options(timeout=7)
        assert type(view) is SyncHTTPClient
        assert view.add(2, 3) == 5
        assert view.map(view.add, [{"a": i} for i in range(3)]) == [0, 1, 2]
        assert repr(view).startswith("SyncHTTPClient(") and "Timeout(total=7.0," in repr(view)
        assert view._async._core is client._async._core
