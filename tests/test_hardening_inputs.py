"""Hardening: bad options and inputs get a typed error before anything is sent."""

from __future__ import annotations

import gzip
import io
import math
import pathlib
from typing import Any

import pytest

from asyncbento import AsyncHTTPClient, Limits, SyncHTTPClient, Timeout
from asyncbento import exceptions as exc

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a constructor that sent anything would fail
SECRET = "s3cret-token"

BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"token": SECRET.encode()}, exc.ArgumentError, "token must be a str"),
    ({"token": SECRET + "\r\nX-Injected: 1"}, exc.ArgumentValueError, "line break"),
    ({"timeout": math.inf}, exc.ArgumentValueError, "finite"),
    ({"timeout": math.nan}, exc.ArgumentValueError, "finite"),
    ({"timeout": -1}, exc.ArgumentValueError, "more than 0"),
    ({"timeout": "5"}, exc.ArgumentError, "number of seconds"),
    ({"server_ready_timeout": math.nan}, exc.ArgumentValueError, "finite"),
    ({"server_ready_timeout": -2}, exc.ArgumentValueError, "0 or more"),
    ({"limits": 5}, exc.ArgumentError, "asyncbento.Limits"),
    ({"headers": {"X Bad": "v"}}, exc.ArgumentValueError, "header name"),
    ({"headers": {"X-Ok": SECRET + "\nX-Injected: 1"}}, exc.ArgumentValueError, "line break"),
    ({"headers": {"X-Ok": 5}}, exc.ArgumentError, "str value"),
    ({"headers": [("X-Ok", "v")]}, exc.ArgumentError, "mapping"),
]


@pytest.mark.parametrize("client_class", [AsyncHTTPClient, SyncHTTPClient])
@pytest.mark.parametrize(("options", "error", "words"), BAD_OPTIONS)
def test_bad_options_are_refused_by_the_constructor(
    client_class: type, options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as failure:
        client_class(NOWHERE, **{"server_ready_timeout": 0, **options})
    assert SECRET not in str(failure.value)


def test_a_cloud_token_with_a_line_break_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENTO_CLOUD_API_KEY", SECRET + "\n")
    with pytest.raises(exc.ArgumentValueError, match="line break"):
        AsyncHTTPClient(NOWHERE)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Timeout(total=math.inf), exc.ArgumentValueError),
        (lambda: Timeout(read=math.nan), exc.ArgumentValueError),
        (lambda: Timeout(connect=0), exc.ArgumentValueError),
        (lambda: Limits(max_connections=2.5), exc.ArgumentError),
        (lambda: Limits(keepalive_expiry=math.nan), exc.ArgumentValueError),
    ],
)
def test_config_objects_check_their_values(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


async def test_is_ready_never_raises(client: Any) -> None:
    assert await client.is_ready() is True
    await client.close()
    assert await client.is_ready() is False  # a closed client used to raise RuntimeError


# ----------------------------------------------------------------- file inputs


class _FailingFile(io.RawIOBase):
    name = "failing.bin"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("with\0nul.bin", "cannot use the path"),
        ("x" * 5000, "cannot use the path"),
    ],
)
async def test_impossible_paths_are_argument_value_errors(
    client: Any, value: str, words: str
) -> None:
    with pytest.raises(exc.ArgumentValueError, match=words) as failure:
        await client.file_size(value)
    assert "the input of file_size()" in str(failure.value)
    assert len(str(failure.value)) < 400  # a 5,000-character path is not echoed whole


async def test_closed_and_failing_file_objects_are_argument_value_errors(
    client: Any, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    with open(path, "rb") as handle:
        pass
    with pytest.raises(exc.ArgumentValueError, match="closed"):
        await client.file_size(handle)
    # Used to be reported as ConnectionLost, as if the network had failed.
    with pytest.raises(exc.ArgumentValueError, match="reading the file failed.*Input/output"):
        await client.file_size(_FailingFile())
    assert (await client.file_size(io.BytesIO(b"fine")))["size"] == 4  # the client goes on


async def test_gzip_file_objects_are_sent_decompressed(client: Any, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.gz"
    with gzip.open(path, "wb") as packed:
        packed.write(b"hello " * 1000)
    with gzip.open(path, "rb") as handle:  # its mode is a number, not "rb"
        assert (await client.file_size(handle))["size"] == 6000


async def test_request_headers_are_checked_before_sending(client: Any) -> None:
    with pytest.raises(exc.ArgumentValueError, match="header name"):
        await client.request("GET", "/readyz", headers={"X Bad": "1"})
    with pytest.raises(exc.ArgumentValueError, match="line break") as failure:
        await client.request("GET", "/readyz", headers={"X-Ok": SECRET + "\r\nX-Injected: 1"})
    assert SECRET not in str(failure.value)
    assert (await client.request("GET", "/readyz", headers={"X-Ok": "1"})).status_code == 200
