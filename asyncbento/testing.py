"""Helpers for testing against a real BentoML server: start ``bentoml serve`` on loopback.

Stdlib only (BentoML runs in the child process)::

    with BentoServer("service:MyService", working_dir="path/to/service") as server:
        with asyncbento.SyncHTTPClient(server.url) as client:
            ...

Each server gets a free port below the kernel's ephemeral range (a port inside it can make a
polling client connect to itself), its own ``BENTOML_HOME`` (two servers sharing one collide
on the task database), and its own process group, which :meth:`BentoServer.stop` ends.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from types import TracebackType

__all__ = ["BentoServer", "free_port"]

_PORT_RANGE = (20000, 32000)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now, chosen below the ephemeral range."""
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def _bentoml_command() -> list[str]:
    sibling = os.path.join(os.path.dirname(sys.executable), "bentoml")
    if os.path.exists(sibling):
        return [sibling]
    found = shutil.which("bentoml")
    return [found] if found else [sys.executable, "-m", "bentoml"]


class BentoServer:
    """A ``bentoml serve`` child process on 127.0.0.1.

    Args:
        target: What to serve, e.g. ``"service:ExampleService"``.
        working_dir: Directory the target is imported from.
        env: Extra environment variables for the server.
        port: Port to listen on (default: a free one).
    """

    def __init__(
        self,
        target: str,
        *,
        working_dir: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.target = target
        self.working_dir = os.path.abspath(os.fspath(working_dir))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_env = dict(env or {})
        self._home = tempfile.mkdtemp(prefix="asyncbento-bentoml-home-")
        self._log_path = os.path.join(self._home, "server.log")
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"BentoServer({self.target!r}, url={self.url!r})"

    def start(self, *, wait_ready: bool = True, timeout: float = 90.0) -> BentoServer:
        """Start the server and wait until it answers.

        Args:
            wait_ready: Wait for ``/readyz`` to answer 200; otherwise only for ``/schema.json``
                (for services that are slow to become ready on purpose).
            timeout: Seconds to wait.

        Returns:
            The server itself (so that ``server = BentoServer(...).start()`` reads well).

        Raises:
            RuntimeError: the server exited early or did not answer in time (with the end of
                its log).
        """
        env = dict(os.environ)
        scratch = os.path.join(self._home, "tmp")  # its temporary files go away with it
        os.makedirs(scratch, exist_ok=True)
        env.update(
            BENTOML_HOME=self._home,
            TMPDIR=scratch,
            BENTOML_DO_NOT_TRACK="true",
            PYTHONUNBUFFERED="1",
        )
        env.update(self._extra_env)
        command = [
            *_bentoml_command(),
            "serve",
            self.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--working-dir",
            self.working_dir,
        ]
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.working_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self} exited early:\n{self.log_tail()}")
            if self._answers(wait_ready):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self} did not start in {timeout} s:\n{self.log_tail()}")

    def _answers(self, wait_ready: bool) -> bool:
        path = "/readyz" if wait_ready else "/schema.json"
        try:
            with urllib.request.urlopen(self.url + path, timeout=1.0) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        try:
            with open(self._log_path, "rb") as log:
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's whole process group; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> BentoServer:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
