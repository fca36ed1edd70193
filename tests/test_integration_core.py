"""Integration: JSON endpoints of a real `bentoml serve`, through both clients."""

from __future__ import annotations

import asyncio
import inspect
from http import HTTPStatus
from typing import Any

import numpy as np
import pydantic
import pytest
from _clients import SyncAsAsync

from asyncbento import AsyncHTTPClient, SyncHTTPClient
from asyncbento import exceptions as exc


class Inner(pydantic.BaseModel):
    label: str
    score: float = 0.0


class Params(pydantic.BaseModel):
    prompt: str
    width: int = 1
    height: int = 1
    nested: Inner | None = None


async def test_str_in_str_out(client: Any) -> None:
    assert await client.summarize(text="one two three") == "3 words: one two three"
    assert await client.summarize("héllo wörld 🙂") == "3 words: héllo wörld 🙂"


async def test_numbers_defaults_and_custom_route(client: Any) -> None:
    assert await client.add(2, 3) == 5
    assert await client.add(a=2) == 2
    assert await client.add(7, b=-10) == -3
    assert client.endpoints["add"].route == "/v1/math/add"


async def test_pydantic_output_comes_back_as_dict(client: Any) -> None:
    result = await client.stats(numbers=[1, 2, 3, 4.5])
    assert result == {"count": 4, "total": 10.5, "mean": 2.625, "minimum": 1.0, "maximum": 4.5}


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, 2, {"c": None}], "s": "ünï", "f": 1.25, "t": True},
        {},
    ],
)
async def test_dict_round_trip(client: Any, value: dict[str, Any]) -> None:
    assert await client.echo(data=value) == value


async def test_list_and_any_round_trip(client: Any) -> None:
    assert await client.echo_list(items=[1, "two", 3.0, None, [4]]) == [1, "two", 3.0, None, [4]]
    for value in [None, True, 0, -1.5, "text", [1, 2], {"k": "v"}]:
        assert await client.echo_value(value=value) == value


async def test_pydantic_and_numpy_inputs(client: Any) -> None:
    params = Params(prompt="cat", width=3, height=2, nested=Inner(label="x", score=0.5))
    result = await client.make_params(params=params, seed=7)
    assert result["prompt"] == "cat#7"
    assert result["width"] == 6
    assert result["nested"] == {"label": "x", "score": 0.5}
    assert await client.echo_list(items=np.array([1, 2, 3])) == [1, 2, 3]
    assert await client.add(np.int64(4), np.int32(5)) == 9
    assert await client.echo(data={"arr": np.arange(3.0), "x": np.float32(0.5)}) == {
        "arr": [0.0, 1.0, 2.0],
        "x": 0.5,
    }


async def test_bool_float_optional(client: Any) -> None:
    assert await client.flags(flag=True, ratio=0.25, note="n") == {
        "flag": True,
        "ratio": 0.25,
        "note": "n",
    }
    assert await client.flags() == {"flag": False, "ratio": 0.5, "note": None}


async def test_root_inputs(client: Any) -> None:
    assert await client.shout("quiet please") == "QUIET PLEASE"
    with pytest.raises(ValueError, match="empty") as info:
        await client.shout("")
    assert isinstance(info.value, exc.ArgumentValueError) and info.value.error_code == 400
    assert await client.shout('"quoted"') == '"QUOTED"'
    assert await client.sum_root([1, 2, 3.5]) == 6.5


async def test_tensor_and_bytes_outputs(client: Any) -> None:
    array = await client.encode(sentences=["abc", "hello"])
    assert isinstance(array, np.ndarray)
    assert array.shape == (2, 4)
    assert array[0, 0] == 3.0 and array[1, 0] == 5.0
    data = await client.make_bytes(n=300, start=250)
    assert data == bytes((250 + i) % 256 for i in range(300))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, exc.InvalidArgument),
        (404, exc.NotFound),
        (422, exc.UnprocessableEntity),
        (401, exc.Unauthorized),
        (403, exc.Forbidden),
        (500, exc.InternalServerError),
        (503, exc.ServiceUnavailable),
    ],
)
async def test_server_errors_are_typed(
    client: Any, code: int, cls: type[exc.BentoMLException]
) -> None:
    with pytest.raises(cls) as info:
        await client.fail(code=code, message="custom failure")
    error = info.value
    assert error.error_code == HTTPStatus(code)
    assert error.body
    if code in (400, 404, 422):
        assert error.message == "custom failure"
    if code == 503:
        assert error.attempts == 3  # retried by the default policy, then raised


async def test_validation_error_message(client: Any) -> None:
    with pytest.raises(exc.InvalidArgument) as info:
        await client.add(a="not a number")
    assert "validation error" in info.value.message
    assert "a:" in info.value.message


async def test_binding_errors_before_any_request(client: Any) -> None:
    for call in (
        lambda: client.add(),
        lambda: client.add(1, 2, 3),
        lambda: client.add(1, a=2),
        lambda: client.add(a=1, c=3),
        lambda: client.shout(),
        lambda: client.shout("a", "b"),
        lambda: client.shout(text="a"),
        lambda: client.echo(data=object()),
    ):
        with pytest.raises(TypeError):
            await call()


async def test_signatures(client: Any) -> None:
    method = client.add.sync if hasattr(client.add, "sync") else client.add
    assert str(inspect.signature(method)) == "(a: int, b: int = 0)"
    shout = client.shout.sync if hasattr(client.shout, "sync") else client.shout
    assert str(inspect.signature(shout)) == "(value: str, /)"
    assert method.__name__ == "add"


async def test_call_by_name(client: Any) -> None:
    assert await client.call("add", 1, b=1) == 2
    with pytest.raises(exc.NotFound):
        await client.call("no_such_endpoint")


async def test_is_ready(client: Any) -> None:
    assert await client.is_ready() is True


async def test_many_concurrent_calls(client: Any) -> None:
    results = await asyncio.gather(*(client.add(i, i) for i in range(200)))
    assert results == [2 * i for i in range(200)]


async def test_with_options_view_shares_session(client: Any, client_kind: str) -> None:
    if client_kind == "sync":
        raw = client.sync.with_options(retry=None, timeout=5)
        assert raw._async._core is client.sync._async._core
        view: Any = SyncAsAsync(raw)
    else:
        view = client.with_options(retry=None, timeout=5)
        assert view._core is client._core
    assert await view.add(1, 1) == 2
    with pytest.raises(exc.ServiceUnavailable) as info:
        await view.fail(code=503)
    assert info.value.attempts == 1


async def test_is_ready_false_when_nothing_listens() -> None:
    client = AsyncHTTPClient("http://127.0.0.1:9", server_ready_timeout=0)
    try:
        assert await client.is_ready(timeout=1) is False
    finally:
        await client.close()


def test_sync_is_ready_false_when_nothing_listens() -> None:
    with pytest.raises(exc.ConnectError):
        SyncHTTPClient("http://127.0.0.1:9", server_ready_timeout=0)


async def test_readiness_wait_times_out(client_kind: str) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(exc.ServiceUnavailable) as info:
        if client_kind == "async":
            async with AsyncHTTPClient("http://127.0.0.1:9", server_ready_timeout=1.0):
                pass
        else:
            await asyncio.to_thread(SyncHTTPClient, "http://127.0.0.1:9", server_ready_timeout=1.0)
    elapsed = asyncio.get_running_loop().time() - started
    assert info.value.error_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "not ready after 1.0 seconds" in info.value.message
    assert 0.9 <= elapsed < 4.0
