"""Hardening of the `asyncbento` command: credentials, write failures, the output file, deep
JSON in inputs and in ``--resume`` lines."""

from __future__ import annotations

import json
import pathlib
import resource
import stat
import subprocess
import sys
from typing import Any

import pytest
from _clients import close_client, open_client
from _misbehaving import MisbehavingServer
from _misbehaving import misbehaving as misbehaving
from test_cli import ENV, batch, records, run, write_lines

PASSWORD = "pw-s3cret"
DEEP = "[" * 5000 + "]" * 5000

# ----------------------------------------------------------------- credentials (item 5)


def test_describe_does_not_print_credentials(example_url: str) -> None:
    url = example_url.replace("http://", f"http://user:{PASSWORD}@")
    result = run("describe", url)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith(example_url.replace("http://", "http://***@"))


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{PASSWORD}@localhost:notaport",
        f"ftp://user:{PASSWORD}@localhost",
        f"http://{PASSWORD}@local host",
    ],
)
def test_usage_errors_do_not_echo_credentials(url: str) -> None:
    result = run("describe", url, "--server-ready-timeout", "0")
    assert result.returncode == 2, result.stderr
    assert PASSWORD not in result.stderr and "***@" in result.stderr


async def test_a_bare_token_in_the_url_is_masked_in_reprs(
    client_kind: str, misbehaving: MisbehavingServer
) -> None:
    # http://TOKEN@host is sent as Basic auth: the token is as secret as a password.
    client = await open_client(client_kind, misbehaving.url.replace("http://", "http://T0KEN99@"))
    try:
        shown = repr(client.sync if client_kind == "sync" else client)
        assert "T0KEN99" not in shown and "***@" in shown
    finally:
        await close_client(client)


# ----------------------------------------------------------------- a failed write (item 6)


def _limit_file_size(size: int) -> Any:
    def limit() -> None:  # in the child: writes past `size` bytes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_batch_stops_at_the_first_failed_write(
    misbehaving: MisbehavingServer, tmp_path: pathlib.Path
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [json.dumps({"data": {"i": i, "pad": "x" * 400}}) for i in range(200)],
    )
    target = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "asyncbento", "batch", misbehaving.url, "echo"]
    files = ["--input", str(source), "--output", str(target), "--concurrency", "2"]
    result = subprocess.run(
        [*command, *files],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        preexec_fn=_limit_file_size(3000),
    )
    assert result.returncode == 1, result.stderr
    assert "stopped: cannot write" in result.stderr  # the cause, and a summary before it
    assert "run again with --resume to finish" in result.stderr
    assert "Traceback" not in result.stderr
    # It used to go on calling the service for all 200 inputs, discarding the results.
    assert misbehaving.count("/echo") < 40
    resumed = batch(misbehaving.url, "echo", source, target, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["index"] for r in records(target)) == list(range(200))


# ----------------------------------------------------------------- the output file (item 7)


@pytest.mark.parametrize("resume", [False, True])
def test_batch_keeps_the_output_files_link_and_permissions(
    example_url: str, tmp_path: pathlib.Path, resume: bool
) -> None:
    source = write_lines(tmp_path / "in.jsonl", ['{"a": 1, "b": 2}', '{"a": 3}'])
    real = tmp_path / "results" / "out.jsonl"
    real.parent.mkdir()
    real.write_text('{"index": 0, "output": 3}\n')
    real.chmod(0o600)
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    more = ["--resume"] if resume else []
    result = batch(example_url, "add", source, link, *more)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(r["index"] for r in records(real)) == [0, 1]
    assert not [p for p in real.parent.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------- deep JSON (item 9)


def test_deep_json_in_inputs_and_resume_lines(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", ['{"a": 1, "b": 2}', DEEP, '{"a": 3}'])
    target = tmp_path / "out.jsonl"
    target.write_text('{"index": 0, "output": ' + DEEP + "}\n")  # a success line too deep
    result = batch(example_url, "add", source, target, "--resume")
    assert result.returncode == 1, result.stderr  # line 2 failed, recorded; no crash
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr
    outcome = {r["index"]: r for r in records(target)}
    assert outcome[0]["output"] == 3 and outcome[2]["output"] == 3
    assert "error" in outcome[1]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_deep_json_arguments_are_a_usage_error(example_url: str) -> None:
    for words in (["--json", DEEP], [f"items={DEEP}"]):
        result = run("call", example_url, "echo_list", *words)
        assert result.returncode == 2, result.stderr
        assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr
