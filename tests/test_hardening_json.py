"""Hardening: values JSON cannot carry (NaN, infinity) and JSON nested too deeply, both ways."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from _clients import open_client
from _misbehaving import MisbehavingServer, ok
from _misbehaving import misbehaving as misbehaving
from _misbehaving import misbehaving_client as misbehaving_client

from asyncbento import exceptions as exc


def _depth() -> int:
    # Deeper than the interpreter allows now: some tools (mypy, run in-process by other tests)
    # raise the recursion limit, and msgspec's depth check follows it.
    return sys.getrecursionlimit() + 100


def _deep_bytes() -> bytes:
    return b"[" * _depth() + b"]" * _depth()


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# ----------------------------------------------------------------- NaN and infinity (item 13)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda c: c.stats(numbers=[1.0, float("nan")]), "numbers"),
        (lambda c: c.echo(data={"deep": {"x": [float("-inf")]}}), "data"),
        (lambda c: c.flags(flag=True, ratio=float("inf")), "ratio"),
    ],
)
async def test_nan_and_infinity_are_refused_naming_the_argument(
    client: Any, call: Any, argument: str
) -> None:
    # msgspec would send them as null: the service would get another value than the caller's.
    with pytest.raises(exc.ArgumentValueError, match=f"argument '{argument}'.*NaN or infinity"):
        await call(client)


async def test_nan_in_a_root_input_is_refused(client: Any) -> None:
    with pytest.raises(exc.ArgumentValueError, match=r"the input of sum_root\(\)"):
        await client.sum_root([1.0, float("nan")])
    assert await client.sum_root([1.0, 2.5]) == 3.5  # finite floats and None still go
    assert await client.flags(note=None, ratio=0.25) == {"flag": False, "ratio": 0.25, "note": None}


# ----------------------------------------------------------------- deep JSON (item 9)


async def test_deeply_nested_arguments_raise_argument_error(client: Any) -> None:
    with pytest.raises(exc.ArgumentError, match=r"argument 'items' of echo_list\(\).*deeply"):
        await client.echo_list(items=_deep_list(_depth()))


async def test_deep_json_answer_is_a_decode_error(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/echo", ok(_deep_bytes()))
    with pytest.raises(exc.ResponseDecodeError, match="nested too deeply"):
        await misbehaving_client.echo(data={})


async def test_deep_json_error_answer_keeps_its_status(
    misbehaving_client: Any, misbehaving: MisbehavingServer
) -> None:
    deep = _deep_bytes()
    misbehaving.script("/echo", ok(deep, status=500), ok(deep, status=400))
    with pytest.raises(exc.InternalServerError) as failure:
        await misbehaving_client.echo(data={})
    assert failure.value.status == 500
    assert failure.value.message.startswith("[[[")  # the body's text, cut to size
    with pytest.raises(exc.InvalidArgument):
        await misbehaving_client.echo(data={})


async def test_deep_schema_is_a_decode_error(client_kind: str) -> None:
    with MisbehavingServer() as server:
        server.schema = b'{"name": "deep", "routes": ' + _deep_bytes() + b"}"  # type: ignore[assignment]
        with pytest.raises(exc.ResponseDecodeError, match="nested too deeply"):
            await open_client(client_kind, server.url, timeout=5)
