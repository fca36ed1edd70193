"""The `asyncbento` command, end to end against the real example service (subprocesses)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "asyncbento", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def records(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_describe(example_url: str) -> None:
    result = run("describe", example_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"service example_service at {example_url}"
    assert "  add(a: int, b: int = 0) -> json  POST /v1/math/add" in lines
    assert any(line.startswith("  stream_async(") and line.endswith("[stream]") for line in lines)
    assert any(
        line.startswith("  slow_square(x: int") and line.endswith("[task]") for line in lines
    )
    assert "  shout(value: str, /) -> text  POST /shout" in lines


def test_call_forms(example_url: str, tmp_path: pathlib.Path) -> None:
    assert run("call", example_url, "add", "a=2", "b=40").stdout == "42\n"
    assert run("call", example_url, "add", "--json", '{"a": 1, "b": 2}').stdout == "3\n"
    assert (
        run("call", example_url, "summarize", "text=hello world").stdout == "2 words: hello world\n"
    )
    assert run("call", example_url, "shout", "value=quiet").stdout == "QUIET\n"
    assert run("call", example_url, "stream_async", "n=3").stdout == "tok0\ntok1\ntok2\n"
    stats = json.loads(run("call", example_url, "stats", "numbers=[1, 2, 3]").stdout)
    assert stats["mean"] == 2.0
    made = run("call", example_url, "make_file", "size=10", "--download-dir", str(tmp_path))
    path = pathlib.Path(json.loads(made.stdout))
    assert path.parent == tmp_path.resolve() and path.stat().st_size == 10
    raw = subprocess.run(
        [sys.executable, "-m", "asyncbento", "call", example_url, "make_bytes", "n=4", "start=65"],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert raw.stdout == b"ABCD"


def test_call_errors_and_usage(example_url: str) -> None:
    failed = run("call", example_url, "fail", "code=404", "message=gone")
    assert failed.returncode == 1
    assert "NotFound: gone" in failed.stderr
    unknown = run("call", example_url, "nope")
    assert unknown.returncode == 2 and "no endpoint 'nope'" in unknown.stderr
    assert run("call", example_url, "add", "--json", "{broken").returncode == 2
    assert run("call", example_url, "add", "novalue").returncode == 2
    assert run("call", "ftp://x", "add").returncode == 2
    assert run("frobnicate").returncode == 2


def test_batch_with_failures_and_malformed_lines(example_url: str, tmp_path: pathlib.Path) -> None:
    lines = [json.dumps({"a": i, "b": 1}) for i in range(40)]
    lines[5] = "{not json"
    lines[9] = ""
    lines[12] = json.dumps({"a": "x"})
    lines[20] = json.dumps({"zzz": 1})
    source = write_lines(tmp_path / "in.jsonl", lines)
    target = tmp_path / "out.jsonl"
    result = run(
        "batch",
        example_url,
        "add",
        "--input",
        str(source),
        "--output",
        str(target),
        "--concurrency",
        "8",
    )
    assert result.returncode == 1
    assert "line 6: malformed input" in result.stderr
    assert "line 10: malformed input" in result.stderr
    assert "40 inputs, 36 succeeded, 4 failed" in result.stderr
    by_index = {r["index"]: r for r in records(target)}
    assert sorted(by_index) == list(range(40))
    for i in range(40):
        if i in (5, 9, 12, 20):
            error = by_index[i]["error"]
            assert isinstance(error, dict) and error["message"]
        else:
            assert by_index[i] == {"index": i, "output": i + 1}
    assert by_index[12]["error"]["type"] == "InvalidArgument"  # type: ignore[index]
    assert by_index[12]["error"]["error_code"] == 400  # type: ignore[index]
    assert by_index[20]["error"]["type"] == "TypeError"  # type: ignore[index]


def test_batch_root_endpoint_and_all_ok(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [json.dumps(w) for w in ["ab", "cd", "ef"]])
    target = tmp_path / "out.jsonl"
    result = run("batch", example_url, "shout", "--input", str(source), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert sorted((r["index"], r["output"]) for r in records(target)) == [
        (0, "AB"),
        (1, "CD"),
        (2, "EF"),
    ]


def test_batch_usage_errors(example_url: str, tmp_path: pathlib.Path) -> None:
    missing = run(
        "batch",
        example_url,
        "add",
        "--input",
        str(tmp_path / "no.jsonl"),
        "--output",
        str(tmp_path / "o.jsonl"),
    )
    assert missing.returncode == 2
    source = write_lines(tmp_path / "in.jsonl", ["{}"])
    unknown = run(
        "batch", example_url, "nope", "--input", str(source), "--output", str(tmp_path / "o.jsonl")
    )
    assert unknown.returncode == 2


def test_interrupted_batch_then_resume(example_url: str, tmp_path: pathlib.Path) -> None:
    count = 60
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"delay": 0.25}) for _ in range(count)])
    target = tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncbento",
            "batch",
            example_url,
            "slow",
            "--input",
            str(source),
            "--output",
            str(target),
            "--concurrency",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if target.exists() and len(target.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    partial = records(target)
    assert 8 <= len(partial) < count
    assert len({r["index"] for r in partial}) == len(partial)
    assert all(r.get("output") == {"slept": 0.25} for r in partial)

    resumed = run(
        "batch",
        example_url,
        "slow",
        "--input",
        str(source),
        "--output",
        str(target),
        "--concurrency",
        "8",
        "--resume",
    )
    assert resumed.returncode == 0, resumed.stderr
    final = records(target)
    assert sorted(r["index"] for r in final) == list(range(count))
    assert all(r["output"] == {"slept": 0.25} for r in final)
    assert f"{count} inputs, {count} succeeded, 0 failed" in resumed.stderr


def test_resume_redoes_failures_only(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"a": i}) for i in range(5)])
    target = tmp_path / "out.jsonl"
    target.write_text(
        json.dumps({"index": 0, "output": 0})
        + "\n"
        + json.dumps({"index": 1, "error": {"type": "X", "error_code": 500, "message": "m"}})
        + "\n"
        + json.dumps({"index": 2, "output": 2})
        + "\n"
        + '{"index": 3, "outp'  # a line cut short by a crash
    )
    result = run(
        "batch", example_url, "add", "--input", str(source), "--output", str(target), "--resume"
    )
    assert result.returncode == 0, result.stderr
    final = records(target)
    assert sorted((r["index"], r["output"]) for r in final) == [(i, i) for i in range(5)]


@pytest.mark.parametrize("flag", ["--token", "--timeout", "--retries"])
def test_common_options_are_accepted(example_url: str, flag: str) -> None:
    value = {"--token": "abc", "--timeout": "5", "--retries": "2"}[flag]
    assert run("call", example_url, "add", "a=1", flag, value).stdout == "1\n"
