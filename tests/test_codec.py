"""Unit tests: request encoding, answer decoding, and error bodies to typed exceptions."""

from __future__ import annotations

import dataclasses
import datetime
from http import HTTPStatus

import numpy as np
import pydantic
import pytest

from asyncbento import exceptions as exc
from asyncbento._codec import decode_body, encode_json, error_from_answer, error_message
from asyncbento._schema import OutputKind


class Params(pydantic.BaseModel):
    prompt: str
    width: int = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_encode_plain_values() -> None:
    value = {"s": "é", "i": 1, "f": 1.5, "b": True, "n": None, "l": [1, 2], "d": {"k": "v"}}
    assert encode_json(value, endpoint="e") == (
        b'{"s":"\xc3\xa9","i":1,"f":1.5,"b":true,"n":null,"l":[1,2],"d":{"k":"v"}}'
    )


def test_encode_numpy_pydantic_dataclass_datetime() -> None:
    value = {
        "arr": np.array([[1.0, 2.0], [3.0, 4.0]]),
        "scalar": np.int64(7),
        "flag": np.bool_(True),
        "model": Params(prompt="p", width=3),
        "point": Point(1, 2),
        "when": datetime.date(2024, 1, 2),
    }
    assert encode_json(value, endpoint="e") == (
        b'{"arr":[[1.0,2.0],[3.0,4.0]],"scalar":7,"flag":true,'
        b'"model":{"prompt":"p","width":3},"point":{"x":1,"y":2},"when":"2024-01-02"}'
    )


def test_unserialisable_value_names_the_argument() -> None:
    with pytest.raises(TypeError) as info:
        encode_json({"ok": 1, "bad": object()}, endpoint="summarize")
    assert "argument 'bad' of summarize()" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "body", "content_type", "expected"),
    [
        (OutputKind.TEXT, "héllo".encode(), "text/plain; charset=utf-8", "héllo"),
        (OutputKind.BYTES, b"\x00\xff", "text/plain; charset=utf-8", b"\x00\xff"),
        (OutputKind.JSON, b"42", "application/json", 42),
        (OutputKind.JSON, b'{"a": [1, 2]}', "application/json", {"a": [1, 2]}),
        (OutputKind.JSON, b"plain words", "text/plain; charset=utf-8", "plain words"),
        (OutputKind.JSON, b"null", "application/json", None),
        (OutputKind.JSON, b'{"a": 1}', "text/plain", {"a": 1}),
        (OutputKind.JSON, b"7", None, 7),
        (OutputKind.ANY, b"raw words", "application/json", "raw words"),
        (OutputKind.ANY, b"[1]", "application/json", [1]),
    ],
)
def test_decode_body(kind: OutputKind, body: bytes, content_type: str, expected: object) -> None:
    assert decode_body(kind, body, content_type) == expected


def test_decode_tensor_is_ndarray() -> None:
    value = decode_body(OutputKind.TENSOR, b"[[4.0, 2.0], [1.0, 97.0]]", "application/json")
    assert isinstance(value, np.ndarray)
    assert value.shape == (2, 2)
    assert value[1, 1] == 97.0


def test_garbage_json_is_a_decode_error_with_body() -> None:
    with pytest.raises(exc.ResponseDecodeError) as info:
        decode_body(OutputKind.JSON, b"{not json", "application/json")
    assert info.value.body == "{not json"
    assert isinstance(info.value, exc.BentoMLException)


def test_invalid_utf8_text_is_a_decode_error() -> None:
    with pytest.raises(exc.ResponseDecodeError):
        decode_body(OutputKind.TEXT, b"\xff\xfe", "text/plain")


VALIDATION = (
    b'{"error": "1 validation error for Input", "detail": [{"type": "string_type", '
    b'"loc": ["text"], "msg": "Input should be a valid string", "url": "u"}]}'
)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "cls", "message"),
    [
        (
            400,
            VALIDATION,
            "application/json",
            exc.InvalidArgument,
            "1 validation error for Input: text: Input should be a valid string",
        ),
        (
            400,
            b'[{"error": "x must be >= 0"}]',
            "application/json",
            exc.InvalidArgument,
            "x must be >= 0",
        ),
        (404, b"Not Found", "text/plain", exc.NotFound, "Not Found"),
        (
            401,
            b'{"error": "Authorization error"}',
            "application/json",
            exc.Unauthorized,
            "Authorization error",
        ),
        (403, b'{"error": "nope"}', "application/json", exc.Forbidden, "nope"),
        (409, b'[{"error": "busy"}]', "application/json", exc.Conflict, "busy"),
        (422, b'[{"error": "cannot"}]', "application/json", exc.UnprocessableEntity, "cannot"),
        (429, b'{"error": "slow down"}', "application/json", exc.TooManyRequests, "slow down"),
        (
            500,
            b'{"error": "An unexpected error has occurred, please check the server log."}',
            "application/json",
            exc.InternalServerError,
            "An unexpected error has occurred, please check the server log.",
        ),
        (
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad</h1></body></html>",
            "text/html",
            exc.BadGateway,
            "502 Bad Gateway",
        ),
        (503, b'{"error": "x"}', "application/json", exc.ServiceUnavailable, "x"),
        (504, b"", "text/plain", exc.GatewayTimeout, "HTTP 504 Gateway Timeout"),
        (418, b"teapot", "text/plain", exc.BentoMLException, "teapot"),
        (599, b"odd", "text/plain", exc.InternalServerError, "odd"),
        (
            400,
            b'{"error": "task abc is not completed yet"}',
            "application/json",
            exc.TaskNotCompleted,
            "task abc is not completed yet",
        ),
    ],
)
def test_error_mapping_for_each_body_format(
    status: int, body: bytes, content_type: str, cls: type[exc.BentoMLException], message: str
) -> None:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    error = error_from_answer(status, reason, body, {"Content-Type": content_type})
    assert type(error) is cls
    assert error.message == message
    assert str(error) == message
    assert error.body == body.decode()
    assert error.status == status
    assert int(error.error_code) == (status if status != 599 else 500)
    assert isinstance(error.error_code, HTTPStatus)


def test_task_not_completed_is_invalid_argument() -> None:
    assert issubclass(exc.TaskNotCompleted, exc.InvalidArgument)


def test_retry_after_is_parsed_from_headers() -> None:
    error = error_from_answer(503, "Service Unavailable", b"{}", {"Retry-After": "3"})
    assert error.retry_after == 3.0


def test_long_messages_are_capped_but_body_kept() -> None:
    body = b"x" * 10_000
    assert len(error_message(body, "text/plain", 500, "")) == 2000
    assert error_from_answer(500, "", body, {}).body == body.decode()
