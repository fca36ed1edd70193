"""Fixtures: real BentoML servers for the example services, started once per session."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from _clients import client, client_kind  # noqa: F401 - fixtures
from _fileproxy import FileProxy

from asyncbento.testing import BentoServer

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# The Ray tests run in their own tox environment (tox -e ray), where Ray is installed.
collect_ignore = [] if importlib.util.find_spec("ray") else ["ray_data"]


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Clients made without download_dir= save files under a new temporary directory, which
    # they never delete (a returned Path must stay valid). Keep those, and the temporary files
    # of the processes the tests start, in pytest's own temporary tree, which pytest prunes.
    folder = str(tmp_path_factory.mktemp("tempfiles"))
    previous_env = os.environ.get("TMPDIR")
    previous_default = tempfile.tempdir
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    yield
    tempfile.tempdir = previous_default
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env


@pytest.fixture(scope="session")
def file_proxy() -> Iterator[FileProxy]:
    proxy = FileProxy().start()
    yield proxy
    proxy.stop()


def _proxy_env(proxy: FileProxy) -> dict[str, str]:
    return {
        "HTTP_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="session")
def example_server(file_proxy: FileProxy) -> Iterator[BentoServer]:
    server = BentoServer("service:ExampleService", working_dir=EXAMPLES, env=_proxy_env(file_proxy))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_url(example_server: BentoServer) -> str:
    return example_server.url


@dataclass(frozen=True)
class AuthServer:
    url: str
    token: str


@pytest.fixture(scope="session")
def auth_server() -> Iterator[AuthServer]:
    token = secrets.token_urlsafe(16)
    server = BentoServer(
        "auth_service:AuthService",
        working_dir=EXAMPLES,
        env={"ASYNCBENTO_EXAMPLE_TOKEN": token},
    )
    server.start()
    yield AuthServer(server.url, token)
    server.stop()


@pytest.fixture(scope="session")
def clash_url() -> Iterator[str]:
    server = BentoServer("clash_service:ClashService", working_dir=EXAMPLES)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def capped_url() -> Iterator[str]:
    """The capped example service: 4 calls at once (429 beyond), 50 ms per call."""
    server = BentoServer("capped_service:CappedService", working_dir=EXAMPLES)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def slow_ready_server_factory() -> Iterator[Callable[[float], BentoServer]]:
    started: list[BentoServer] = []

    def make(ready_after: float) -> BentoServer:
        server = BentoServer(
            "slow_ready_service:SlowReadyService",
            working_dir=EXAMPLES,
            env={"ASYNCBENTO_READY_AFTER": str(ready_after)},
        )
        started.append(server)
        return server.start(wait_ready=False)

    yield make
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _no_cloud_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own BentoCloud key must not leak into the tests' requests.
    if "BENTO_CLOUD_API_KEY" in os.environ:
        monkeypatch.delenv("BENTO_CLOUD_API_KEY")
