"""The `asyncbento` command, end to end against the real example service (subprocesses),
plus its input-file reading on its own."""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from asyncbento import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncbento", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def records(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def batch(url: str, endpoint: str, source: pathlib.Path, target: pathlib.Path, *more: str):  # type: ignore[no-untyped-def]
    return run("batch", url, endpoint, "--input", str(source), "--output", str(target), *more)


# ----------------------------------------------------------------------------- input files


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{}",
        b"{}\n",
        b'{"a": 1}\r\n\r\n{"a": 2}',
        b"\n\n\n",
        b'{"a": "' + b"x" * 5000 + b'"}\n[1]\n' + b"y" * 3000,
    ],
)
async def test_lines_are_counted_and_read_alike(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    monkeypatch.setattr(cli, "_READ_BLOCK", 64)  # lines longer than a block, split anywhere
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    lines = [line async for line in cli.read_lines(path)]
    expected = content.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert lines == expected
    assert cli.count_lines(path) == len(expected)


def test_malformed_lines_stand_in_as_errors() -> None:
    stderr = io.StringIO()
    assert cli.parse_line(b'\xef\xbb\xbf{"a": 1}\r', 0, stderr) == {"a": 1}  # BOM, CRLF
    for index, raw in enumerate([b"", b"   ", b"{nope", b'{"a": "\xff"}', b"NaN"], start=1):
        value = cli.parse_line(raw, index, stderr)
        assert isinstance(value, cli.MalformedLine)
        assert f"line {index + 1}" in str(value)
    assert stderr.getvalue().count("malformed input") == 5


# ----------------------------------------------------------------------------- describe, call


def test_describe(example_url: str) -> None:
    result = run("describe", example_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"service example_service at {example_url}"
    assert "  add(a: int, b: int = 0) -> json  POST /v1/math/add" in lines
    assert "  summarize(text: str) -> text  POST /summarize" in lines
    assert any(line.startswith("  stream_async(") and line.endswith("[stream]") for line in lines)
    assert any(
        line.startswith("  slow_square(x: int") and line.endswith("[task]") for line in lines
    )
    assert "  shout(value: str, /) -> text  POST /shout" in lines


def test_call_forms(example_url: str, tmp_path: pathlib.Path) -> None:
    assert run("call", example_url, "add", "a=2", "b=40").stdout == "42\n"
    assert run("call", example_url, "add", "--json", '{"a": 1}', "b=2").stdout == "3\n"
    assert (
        run("call", example_url, "summarize", "text=hello world").stdout == "2 words: hello world\n"
    )
    assert run("call", example_url, "shout", "value=quiet").stdout == "QUIET\n"
    assert run("call", example_url, "shout", "--json", '"json text"').stdout == "JSON TEXT\n"
    assert run("call", example_url, "stream_async", "n=3").stdout == "tok0\ntok1\ntok2\n"
    stats = json.loads(run("call", example_url, "stats", "numbers=[1, 2, 3]").stdout)
    assert stats["mean"] == 2.0
    made = run("call", example_url, "make_file", "size=10", "--download-dir", str(tmp_path))
    path = pathlib.Path(made.stdout.rstrip("\n"))  # the saved path, as is
    assert path.parent == tmp_path.resolve() and path.stat().st_size == 10
    raw = subprocess.run(
        [sys.executable, "-m", "asyncbento", "call", example_url, "make_bytes", "n=4", "start=65"],
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert raw.stdout == b"ABCD"  # bytes go out raw


def test_header_option_reaches_the_service(example_url: str) -> None:
    result = run(
        "call",
        example_url,
        "echo_headers",
        "--header",
        "X-Tenant: acme",
        "--header",
        "X-User:u1",
        '--json={"names": ["x-tenant", "x-user"]}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["headers"] == {"x-tenant": ["acme"], "x-user": ["u1"]}
    bad = run("call", example_url, "add", "a=1", "--header", "no-colon")
    assert bad.returncode == 2 and "--header takes NAME:VALUE" in bad.stderr


def test_call_errors_and_usage(example_url: str) -> None:
    failed = run("call", example_url, "fail", "code=404", "message=gone")
    assert failed.returncode == 1
    assert re.search(
        r"NotFound: gone\nasyncbento: request_id=[0-9a-f]{16} trace_id=[0-9a-f]{32}\n",
        failed.stderr,
    )
    unknown = run("call", example_url, "nope")
    assert unknown.returncode == 2 and "no endpoint 'nope'" in unknown.stderr
    for words in (
        ["add", "--json", "{broken"],
        ["add", "--json", "[1]"],
        ["add", "novalue"],
        ["add", "b=1"],  # missing a
        ["add", "a=1", "c=2"],  # unknown c
        ["shout", "text=x"],  # a root input is value=...
    ):
        result = run("call", example_url, *words)
        assert result.returncode == 2, (words, result.stderr)
        assert result.stderr.startswith("asyncbento: error:"), result.stderr
    assert run("call", "ftp://x", "add").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("call", example_url, "add", "a=1", "--retries", "0").returncode == 2


@pytest.mark.parametrize(
    "options", [["--token", "abc"], ["--timeout", "5"], ["--retries", "2"], ["--no-retry"]]
)
def test_common_options_are_accepted(example_url: str, options: list[str]) -> None:
    result = run("call", example_url, "add", "a=1", *options, "--server-ready-timeout", "5")
    assert result.stdout == "1\n", result.stderr


# ----------------------------------------------------------------------------- batch


def test_batch_with_failures_and_malformed_lines(example_url: str, tmp_path: pathlib.Path) -> None:
    lines = [json.dumps({"a": i, "b": 1}) for i in range(40)]
    lines[5] = "{not json"
    lines[9] = ""
    lines[12] = json.dumps({"a": "x"})
    lines[20] = json.dumps({"zzz": 1})
    lines[30] = json.dumps([1, 2])
    source = write_lines(tmp_path / "in.jsonl", lines)
    target = tmp_path / "out.jsonl"
    result = batch(example_url, "add", source, target, "--concurrency", "8")
    assert result.returncode == 1
    assert "line 6: malformed input" in result.stderr
    assert "line 10: malformed input: blank line" in result.stderr
    assert "asyncbento batch: 40 inputs, 35 succeeded, 5 failed in " in result.stderr
    by_index = {r["index"]: r for r in records(target)}
    assert sorted(by_index) == list(range(40)) and len(records(target)) == 40
    errors = {i: by_index[i]["error"] for i in (5, 9, 12, 20, 30)}
    for i in range(40):
        if i not in errors:
            assert by_index[i] == {"index": i, "output": i + 1}
    assert errors[5]["type"] == errors[9]["type"] == "MalformedLine"  # type: ignore[index]
    assert errors[12] == {
        "type": "InvalidArgument",
        "error_code": 400,
        "message": errors[12]["message"],
        "request_id": errors[12]["request_id"],  # the server's ids, to find it in its log
        "trace_id": errors[12]["trace_id"],
    }  # type: ignore[index]
    assert re.fullmatch(r"[0-9a-f]{16}", errors[12]["request_id"])  # type: ignore[index]
    assert re.fullmatch(r"[0-9a-f]{32}", errors[12]["trace_id"])  # type: ignore[index]
    assert "request_id" not in errors[20]  # type: ignore[operator] - found before sending
    assert errors[20]["type"] == errors[30]["type"] == "ArgumentError"  # type: ignore[index]
    assert errors[20]["error_code"] == 400  # type: ignore[index]
    # Every rejected line is named, whatever the reason: not JSON, not an object, an unknown
    # argument, refused by the server.
    assert errors[5]["message"].startswith("line 6 is not valid JSON")  # type: ignore[index]
    assert errors[30]["message"] == (  # type: ignore[index]
        "line 31: add() batch inputs must be dicts of arguments, not list"
    )
    assert errors[20]["message"].startswith("line 21: ")  # type: ignore[index]
    assert errors[12]["message"].startswith("line 13: ")  # type: ignore[index]
    for line in (13, 21, 31):
        assert f"asyncbento batch: line {line}: rejected input: " in result.stderr


def test_batch_outputs_json_cannot_hold(example_url: str, tmp_path: pathlib.Path) -> None:
    download = tmp_path / "downloads"
    kinds = [
        ("make_bytes", {"n": 3, "start": 65}),
        ("encode", {"sentences": ["ab"]}),
        ("make_file", {"size": 5, "name": "five.bin"}),
        ("shout", "root value"),
    ]
    for endpoint, arguments in kinds:
        source = write_lines(tmp_path / f"{endpoint}.jsonl", [json.dumps(arguments)])
        target = tmp_path / f"{endpoint}.out.jsonl"
        result = batch(example_url, endpoint, source, target, "--download-dir", str(download))
        assert result.returncode == 0, result.stderr
        [record] = records(target)
        output = record["output"]
        if endpoint == "make_bytes":
            assert base64.b64decode(output) == b"ABC"  # type: ignore[arg-type]
        elif endpoint == "encode":
            assert output == [[2.0, 1.0, 97.0, 1.0]]
        elif endpoint == "make_file":
            assert pathlib.Path(output).read_bytes() == bytes(range(5))  # type: ignore[arg-type]
        else:
            assert output == "ROOT VALUE"


def test_batch_tasks_and_exit_codes(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(
        tmp_path / "in.jsonl", [json.dumps({"x": i, "delay": 0.05}) for i in range(6)]
    )
    target = tmp_path / "out.jsonl"
    result = batch(example_url, "slow_square", source, target, "--tasks", "--progress", "on")
    assert result.returncode == 0, result.stderr
    assert sorted((r["index"], r["output"]["square"]) for r in records(target)) == [  # type: ignore[index]
        (i, i * i) for i in range(6)
    ]
    assert "6/6" in result.stderr  # the progress bar
    assert batch(example_url, "add", source, target, "--tasks").returncode == 2  # not a task


def test_batch_usage_errors(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", ["{}"])
    target = tmp_path / "o.jsonl"
    missing = batch(example_url, "add", tmp_path / "no.jsonl", target)
    assert missing.returncode == 2 and "no such input file" in missing.stderr
    unknown = batch(example_url, "nope", source, target)
    assert unknown.returncode == 2 and "no endpoint 'nope'" in unknown.stderr
    assert batch(example_url, "add", source, target, "--concurrency", "0").returncode == 2
    assert batch(example_url, "add", source, source).returncode == 2
    assert source.read_text() == "{}\n"  # the input was not touched
    assert batch("not a url", "add", source, target).returncode == 2
    assert run("batch", example_url, "add", "--input", str(source)).returncode == 2


def test_interrupted_batch_then_resume(example_url: str, tmp_path: pathlib.Path) -> None:
    count = 60
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"delay": 0.25}) for _ in range(count)])
    target = tmp_path / "out.jsonl"
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
        env=ENV,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if target.exists() and len(target.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "--resume" in stderr
    partial = records(target)
    assert 8 <= len(partial) < count
    assert len({r["index"] for r in partial}) == len(partial)
    assert all(r.get("output") == {"slept": 0.25} for r in partial)

    resumed = batch(example_url, "slow", source, target, "--concurrency", "16", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    final = records(target)
    assert sorted(r["index"] for r in final) == list(range(count))  # once each
    assert all(r["output"] == {"slept": 0.25} for r in final)
    assert f"{count} inputs, {count} succeeded, 0 failed" in resumed.stderr


def test_resume_redoes_failures_only(example_url: str, tmp_path: pathlib.Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"a": i}) for i in range(6)])
    target = tmp_path / "out.jsonl"
    kept = [
        {"index": 0, "output": 100},  # kept as it is, even if a new run would differ
        {"index": 1, "error": {"type": "X", "error_code": 500, "message": "m"}},
        {"index": 2, "output": 2},
        {"index": 2, "output": 2},  # a duplicate
        {"index": 9, "output": 9},  # no such input line
    ]
    target.write_text(
        "".join(json.dumps(r) + "\n" for r in kept) + '{"index": 3, "outp'  # cut short
    )
    result = batch(example_url, "add", source, target, "--resume")
    assert result.returncode == 0, result.stderr
    assert "6 inputs, 6 succeeded, 0 failed" in result.stderr
    final = sorted((r["index"], r["output"]) for r in records(target))
    assert final == [(0, 100), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    again = batch(example_url, "add", source, target, "--resume")
    assert again.returncode == 0 and "6 inputs, 6 succeeded" in again.stderr
    assert sorted((r["index"], r["output"]) for r in records(target)) == final
    fresh = batch(example_url, "add", source, target)  # without --resume: start over
    assert sorted((r["index"], r["output"]) for r in records(target)) == [(i, i) for i in range(6)]
    assert fresh.returncode == 0
