"""``client.request()``: any route of the service, through both clients.

Against the real example service: probes, an endpoint called by hand, errors returned (not
raised) and typed by ``raise_for_status()``. Against the misbehaving server: what is sent
(query, headers, bodies) and the retry limits (statuses only for GET/HEAD/OPTIONS; a body is
never sent twice once the server may have it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from _clients import opened_client
from _misbehaving import FAST, MisbehavingServer, error, ok, reset, slow_headers
from _misbehaving import misbehaving as misbehaving

import asyncbento
from asyncbento import exceptions as exc

# ----------------------------------------------------------------------------- real service


async def test_get_readyz(client: Any) -> None:
    response = await client.request("GET", "/readyz")
    assert isinstance(response, asyncbento.Response)
    assert response.status_code == 200
    assert response.is_success and not response.is_error
    assert response.raise_for_status() is response
    assert response.url.path == "/readyz"
    assert response.method == "GET"
    assert repr(response) == "<Response [200 OK]>"


async def test_post_json_to_an_endpoint(client: Any) -> None:
    response = await client.request("post", "/v1/math/add", json={"a": 2, "b": 40})
    assert response.status_code == 200
    assert response.json() == 42
    assert response.text == "42"
    assert response.content == b"42"
    assert response.headers["content-type"] == response.headers["Content-Type"]
    assert response.headers["CONTENT-TYPE"].startswith("application/json")
    assert response.headers["x-bentoml-request-id"]


async def test_a_route_that_is_not_an_endpoint(client: Any) -> None:
    response = await client.request("GET", "metrics")  # no leading slash: still the service's
    assert response.status_code == 200
    assert "bentoml" in response.text


async def test_an_absolute_url_on_the_service(client: Any, example_url: str) -> None:
    response = await client.request("GET", f"{example_url}/schema.json")
    assert response.json()["name"] == "example_service"


async def test_404_is_returned_not_raised(client: Any) -> None:
    response = await client.request("GET", "/no/such/route")
    assert response.status_code == 404
    assert response.is_error and not response.is_success
    assert response.text == "Not Found"
    with pytest.raises(exc.NotFound) as info:
        response.raise_for_status()
    assert info.value.error_code == 404
    assert info.value.message == "Not Found"


async def test_raise_for_status_is_typed_as_a_call_would_be(client: Any) -> None:
    response = await client.request("POST", "/checked_sqrt", json={"x": -4})
    assert response.status_code == 400
    with pytest.raises(exc.InvalidArgument) as by_request:
        response.raise_for_status()
    with pytest.raises(exc.InvalidArgument) as by_call:
        await client.checked_sqrt(x=-4)
    assert by_request.value.message == by_call.value.message == "x must be >= 0, got -4.0"
    assert by_request.value.body == by_call.value.body


async def test_another_origin_is_refused_before_sending(client: Any) -> None:
    with pytest.raises(exc.ArgumentValueError) as info:
        await client.request("GET", "http://example.com/metrics")
    assert isinstance(info.value, ValueError)
    assert "example.com" in info.value.message


async def test_two_bodies_are_refused(client: Any) -> None:
    with pytest.raises(exc.ArgumentError) as info:
        await client.request("POST", "/echo", json={}, content=b"{}")
    assert isinstance(info.value, TypeError)
    assert "json= and content=" in info.value.message


async def test_unknown_keyword_is_a_type_error(client: Any) -> None:
    with pytest.raises(TypeError):
        await client.request("GET", "/readyz", allow_redirects=False)


# ----------------------------------------------------------------------------- what is sent


@pytest.fixture
async def fault_client(client_kind: str, misbehaving: MisbehavingServer) -> AsyncIterator[Any]:
    async with opened_client(
        client_kind, misbehaving.url, retry=FAST, timeout=5, token="t0k"
    ) as opened:
        yield opened


async def test_query_headers_and_token_are_sent(
    fault_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/custom", ok({"fine": True}))
    response = await fault_client.request(
        "GET", "/custom", params={"n": 3, "flag": True, "tag": ["a", "b"]}, headers={"X-Extra": "1"}
    )
    assert response.json() == {"fine": True}
    [seen] = misbehaving.requests
    assert (seen.method, seen.path) == ("GET", "/custom")
    assert parse_qs(seen.query) == {"n": ["3"], "flag": ["true"], "tag": ["a", "b"]}
    assert seen.headers["x-extra"] == "1"
    assert seen.headers["authorization"] == "Bearer t0k"


@pytest.mark.parametrize(
    ("options", "body", "content_type"),
    [
        ({"json": {"a": [1, "ü"]}}, b'{"a":[1,"\xc3\xbc"]}', "application/json"),
        ({"content": "plain ü"}, "plain ü".encode(), None),
        ({"content": b"\x00\xff"}, b"\x00\xff", None),
        ({"data": {"k": "v w", "n": 2}}, b"k=v+w&n=2", "application/x-www-form-urlencoded"),
    ],
)
async def test_bodies(
    fault_client: Any,
    misbehaving: MisbehavingServer,
    options: dict[str, Any],
    body: bytes,
    content_type: str | None,
) -> None:
    misbehaving.default("/custom", ok(b"done", content_type="text/plain; charset=utf-8"))
    response = await fault_client.request("PUT", "/custom", **options)
    assert response.text == "done"
    [seen] = misbehaving.requests
    assert (seen.method, seen.body) == ("PUT", body)
    if content_type is not None:
        assert seen.headers["content-type"] == content_type


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_idempotent_methods_are_retried_on_statuses(
    fault_client: Any, misbehaving: MisbehavingServer, method: str
) -> None:
    misbehaving.script("/custom", error(503, "busy", retry_after="0"), error(502, "proxy"))
    misbehaving.default("/custom", ok({"fine": True}))
    response = await fault_client.request(method, "/custom")
    assert response.status_code == 200
    assert misbehaving.count("/custom") == 3


async def test_a_status_that_stays_is_returned_after_the_retries(
    fault_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.default("/custom", error(503, "still busy", retry_after="0"))
    response = await fault_client.request("GET", "/custom")
    assert response.status_code == 503
    assert response.json() == {"error": "still busy"}
    assert misbehaving.count("/custom") == FAST.max_attempts
    with pytest.raises(exc.ServiceUnavailable, match="still busy"):
        response.raise_for_status()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_not_retried_on_statuses(
    fault_client: Any, misbehaving: MisbehavingServer, method: str
) -> None:
    misbehaving.script("/custom", error(503, "busy", retry_after="0"))
    response = await fault_client.request(method, "/custom", json={"once": True})
    assert response.status_code == 503
    assert misbehaving.count("/custom") == 1


async def test_a_body_the_server_may_have_is_never_sent_again(
    fault_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/custom", reset())
    with pytest.raises(exc.ConnectionLost):
        await fault_client.request("POST", "/custom", json={"once": True})
    assert misbehaving.count("/custom") == 1


async def test_get_is_sent_again_after_a_reset(
    fault_client: Any, misbehaving: MisbehavingServer
) -> None:
    misbehaving.script("/custom", reset())
    misbehaving.default("/custom", ok({"fine": True}))
    response = await fault_client.request("GET", "/custom")
    assert response.json() == {"fine": True}
    assert misbehaving.count("/custom") == 2


async def test_per_request_timeout(fault_client: Any, misbehaving: MisbehavingServer) -> None:

    misbehaving.default("/custom", slow_headers(1.0))
    with pytest.raises(exc.ReadTimeout):
        await fault_client.request("POST", "/custom", timeout=0.2)
    assert misbehaving.count("/custom") == 1
