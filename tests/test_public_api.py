"""Unit tests: the public surface, import weight, reprs and configuration objects."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import asyncbento
from asyncbento import AsyncHTTPClient, Limits, RetryPolicy, Timeout


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in asyncbento.__all__ if n not in ("__version__",)]
    assert names == sorted(names, key=lambda n: (n != n.upper(), n))  # constants first
    for name in asyncbento.__all__:
        assert hasattr(asyncbento, name), name


def test_package_is_typed() -> None:
    assert (pathlib.Path(asyncbento.__file__).parent / "py.typed").exists()


def test_import_is_light() -> None:
    heavy = ["bentoml", "pydantic", "numpy", "httpx", "PIL", "tqdm", "ray", "pandas"]
    code = (
        "import sys, asyncbento, asyncbento.exceptions;"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_token_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    client = AsyncHTTPClient("http://127.0.0.1:9", token="s3cr3t-token")
    assert "s3cr3t" not in repr(client)
    assert "***" in repr(client)
    monkeypatch.setenv("BENTO_CLOUD_API_KEY", "env-secret")
    from_env = AsyncHTTPClient("http://127.0.0.1:9")
    assert "env-secret" not in repr(from_env)
    assert from_env._core.transport._headers["Authorization"] == "Bearer env-secret"


def test_no_io_in_constructor() -> None:
    # Nothing listens on port 9; a constructor that connected would fail or hang.
    client = AsyncHTTPClient("http://127.0.0.1:9", server_ready_timeout=0)
    assert client._core.transport.session is None
    deferred = client.summarize  # before set-up: a stand-in that sets up when awaited
    assert "not set up yet" in repr(deferred)
    assert client._core.transport.session is None


@pytest.mark.parametrize(
    ("url", "base", "socket"),
    [
        ("http://example.com:3000", "http://example.com:3000", None),
        ("https://example.com/prefix/", "https://example.com/prefix", None),
        ("tcp://127.0.0.1:3000", "http://127.0.0.1:3000", None),
        ("file:///tmp/bento.sock", "http://localhost", "/tmp/bento.sock"),
        ("localhost:3000", "http://localhost:3000", None),
    ],
)
def test_url_forms(url: str, base: str, socket: str | None) -> None:
    transport = AsyncHTTPClient(url)._core.transport
    assert (transport.base_url, transport.socket_path) == (base, socket)


@pytest.mark.parametrize("url", ["ftp://x", "", "http://"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        AsyncHTTPClient(url)


def test_config_objects_are_frozen_and_keyword_only() -> None:
    timeout = Timeout(total=5, connect=1)
    with pytest.raises(AttributeError):
        timeout.total = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Timeout(5)  # type: ignore[misc]
    assert Timeout.coerce(2.5) == Timeout(total=2.5)
    assert Timeout.coerce(None) == Timeout(total=None)
    with pytest.raises(ValueError):
        Timeout.coerce(-1)
    with pytest.raises(TypeError):
        Timeout.coerce("3")  # type: ignore[arg-type]
    assert Limits(max_connections=10, max_connections_per_host=4).in_flight == 4
    assert Limits(max_connections=10).in_flight == 10
    with pytest.raises(ValueError):
        Limits(max_connections=0)
    assert RetryPolicy(retry_statuses=[503]).retry_statuses == frozenset({503})  # type: ignore[arg-type]


def test_version() -> None:
    assert asyncbento.__version__.count(".") == 2
    assert os.environ.get("ASYNCBENTO_NEVER_SET") is None
