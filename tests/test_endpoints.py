"""The endpoint registry: the one clash-naming rule, and one error for an unknown endpoint name
from every entrance (attribute, call, map, imap, map_tasks, the sync client, the CLI, Ray)."""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, SyncHTTPClient, exceptions
from asyncbento._endpoints import attribute_names
from asyncbento.integrations.ray import BentoMLBatchCaller

ROOT = pathlib.Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- clash rule


def test_names_that_clash_get_the_prefix() -> None:
    reserved = {"url", "map", "close"}
    names = ["add", "url", "map", "_private", "__call__"]
    assert attribute_names(names, reserved) == {
        "add": "add",
        "url": "api_url",
        "map": "api_map",
        "_private": "api__private",
    }  # __call__ is served by client(...) itself


def test_a_prefixed_name_never_takes_another_endpoints_name() -> None:
    # `map` clashes, and `api_map` is an endpoint of its own: `map` moves one prefix further.
    assert attribute_names(["map", "api_map"], {"map"}) == {
        "map": "api_api_map",
        "api_map": "api_map",
    }
    assert attribute_names(["api_map", "map"], {"map", "api_api_map"}) == {
        "api_map": "api_map",
        "map": "api_api_api_map",
    }


@pytest.mark.parametrize("cls", [AsyncHTTPClient, SyncHTTPClient])
def test_both_clients_protect_their_own_and_private_attributes(cls: type) -> None:
    reserved = set(dir(cls))
    names = ["_async", "_finalizer", "_core", "map", "imap", "close", "call", "plain"]
    attributes = attribute_names(names, reserved)
    assert attributes["plain"] == "plain"
    assert all(a == f"api_{n}" for n, a in attributes.items() if n != "plain")
    assert not set(attributes.values()) & reserved
    assert len(set(attributes.values())) == len(attributes)


def test_endpoint_not_found_is_one_type_that_pickles() -> None:
    error = exceptions.EndpointNotFound("the service has no endpoint 'x' (its endpoints: a)")
    assert isinstance(error, exceptions.NotFound)
    assert isinstance(error, AttributeError)
    assert int(error.error_code) == 404
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exceptions.EndpointNotFound and copy.message == error.message


# ----------------------------------------------------------------------------- unknown name


def expected_message(endpoints: Any) -> str:
    return f"the service has no endpoint 'nope' (its endpoints: {', '.join(sorted(endpoints))})"


async def test_unknown_name_from_call(client: Any) -> None:
    with pytest.raises(exceptions.EndpointNotFound) as info:
        await client.call("nope", x=1)
    assert str(info.value) == expected_message(client.endpoints)


async def test_unknown_name_from_attribute(client: Any) -> None:
    with pytest.raises(exceptions.EndpointNotFound) as info:
        client.nope  # noqa: B018
    assert str(info.value) == expected_message(client.endpoints)
    assert not hasattr(client, "nope")  # an AttributeError, as attribute lookups expect


async def test_unknown_name_from_map(client: Any) -> None:
    with pytest.raises(exceptions.EndpointNotFound) as info:
        await client.map("nope", [{"x": 1}])
    assert str(info.value) == expected_message(client.endpoints)


async def test_unknown_name_from_imap(client: Any) -> None:
    with pytest.raises(exceptions.EndpointNotFound) as info:
        async for _ in client.imap("nope", [{"x": 1}]):
            pass
    assert str(info.value) == expected_message(client.endpoints)


async def test_unknown_name_from_map_tasks(client: Any) -> None:
    with pytest.raises(exceptions.EndpointNotFound) as info:
        await client.map_tasks("nope", [{"x": 1}])
    assert str(info.value) == expected_message(client.endpoints)


async def _drain(pairs: Any) -> None:
    async for _ in pairs:
        pass


@pytest.mark.parametrize(
    "entrance",
    [
        lambda client: client.nope(x=1),
        lambda client: client.call("nope", x=1),
        lambda client: client.map("nope", [{"x": 1}]),
        lambda client: client.map_tasks("nope", [{"x": 1}]),
        lambda client: _drain(client.imap("nope", [{"x": 1}])),
    ],
    ids=["attribute", "call", "map", "map_tasks", "imap"],
)
async def test_unknown_name_before_set_up(example_url: str, entrance: Any) -> None:
    # Not entered: the entrance sets the client up (once), then asks the same registry.
    client = AsyncHTTPClient(example_url)
    try:
        with pytest.raises(exceptions.EndpointNotFound) as info:
            await entrance(client)
        assert str(info.value) == expected_message(client.endpoints)
    finally:
        await client.close()


def test_unknown_name_from_the_cli(example_url: str) -> None:
    with SyncHTTPClient(example_url) as client:
        message = expected_message(client.endpoints)
    result = subprocess.run(
        [sys.executable, "-m", "asyncbento", "call", example_url, "nope", "x=1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"asyncbento: error: {message}\n"


def test_unknown_name_from_the_ray_caller(example_url: str) -> None:
    # Ray builds one caller per actor with these constructor arguments; Ray itself is not
    # needed to see the check (the caller's set-up path is plain Python).
    with pytest.raises(exceptions.EndpointNotFound) as info:
        BentoMLBatchCaller(url=example_url, endpoint="nope")
    with SyncHTTPClient(example_url) as client:
        assert str(info.value) == expected_message(client.endpoints)
