"""The documentation's examples run, and its reference tables match the code.

A fenced block immediately preceded by the line ``<!-- run -->`` is run against the real example
service (``examples/service.py``), with ``http://localhost:3000`` replaced by the test server's URL:

- a ``python`` block runs as a script in a fresh interpreter, as a reader would paste it; it must
  exit with status 0, print something, and write nothing to stderr;
- a ``console`` block is a shell session: each ``$ command`` line runs in ``bash`` (``asyncbento``
  is the package's command), must exit with status 0, and the lines after it (up to the next
  ``$``) must appear, in that order, in what it printed (stdout and stderr together). A line
  ``...`` stands for lines left out; decimal numbers (timings, rates) match any decimal number.

The blocks of one page run in order in one working directory (a reader follows a page in one
terminal), in which ``examples/`` is the repository's examples folder, as in a checkout.
"""

from __future__ import annotations

import os
import pathlib
import re
import stat
import subprocess
import sys

import pytest

from asyncbento import exceptions

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLACEHOLDER = "http://localhost:3000"
MARKED = re.compile(r"^<!-- run -->[ \t]*\n```(python|console)[ \t]*\n(.*?)\n```", re.M | re.S)


def runnable_blocks() -> list[tuple[str, str, str]]:
    """(page#n, language, code) for every marked block, in page order."""
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for number, match in enumerate(MARKED.finditer(page.read_text()), start=1):
            blocks.append((f"{page.relative_to(DOCS)}#{number}", match.group(1), match.group(2)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_docs_have_runnable_examples() -> None:
    pages = {name.split("#")[0] for name, _, _ in BLOCKS}
    assert len(BLOCKS) >= 30
    for page in (
        "index.md",
        "migration.md",
        "guides/calling.md",
        "guides/files.md",
        "guides/streaming.md",
        "guides/tasks.md",
        "guides/batch.md",
        "guides/cli.md",
        "guides/errors.md",
        "guides/resilience.md",
        "guides/sync.md",
        "guides/testing.md",
    ):
        assert page in pages, page
    assert {language for _, language, _ in BLOCKS} == {"python", "console"}


def test_every_run_marker_is_followed_by_a_block() -> None:
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        assert text.count("<!-- run -->") == len(MARKED.findall(text)), page


_WORKDIRS: dict[str, pathlib.Path] = {}


def _workdir(page: str, factory: pytest.TempPathFactory) -> pathlib.Path:
    """The page's working directory, with ``examples/`` and an ``asyncbento`` command on PATH."""
    if page not in _WORKDIRS:
        folder = factory.mktemp("docs")
        (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
        bin_dir = folder / ".bin"
        bin_dir.mkdir()
        command = bin_dir / "asyncbento"
        command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m asyncbento "$@"\n')
        command.chmod(command.stat().st_mode | stat.S_IXUSR)
        _WORKDIRS[page] = folder
    return _WORKDIRS[page]


def _environment(workdir: pathlib.Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        PATH=f"{workdir / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )


def _normalise(line: str) -> str:
    return re.sub(r"\d+\.\d+", "<n>", line.rstrip())


def _session(code: str) -> list[tuple[str, list[str]]]:
    """A console block as (command, expected output lines) pairs."""
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return steps


def _assert_printed(command: str, expected: list[str], printed: str) -> None:
    actual = [_normalise(line) for line in printed.splitlines()]
    position = 0
    for line in expected:
        if line.strip() in ("", "..."):
            continue
        wanted = _normalise(line)
        try:
            position = actual.index(wanted, position) + 1
        except ValueError:
            pytest.fail(f"$ {command}\nexpected the line\n  {line}\nin its output:\n{printed}")


@pytest.mark.parametrize(("name", "language", "code"), BLOCKS, ids=[name for name, _, _ in BLOCKS])
def test_docs_example_runs(
    name: str, language: str, code: str, example_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page, number = name.split("#")
    workdir = _workdir(page, tmp_path_factory)
    code = code.replace(PLACEHOLDER, example_url)
    environment = _environment(workdir)
    if language == "python":
        script = workdir / f".example{number}.py"
        script.write_text(code)
        result = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=150,
            cwd=workdir,
            env=environment,
        )
        assert result.returncode == 0, f"{name} failed:\n{result.stderr}"
        assert result.stderr == "", result.stderr
        assert result.stdout.strip(), f"{name} printed nothing"
        return
    for command, expected in _session(code):
        result = subprocess.run(
            ["bash", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=150,
            cwd=workdir,
            env=environment,
        )
        assert result.returncode == 0, f"{name}: $ {command}\n{result.stdout}"
        _assert_printed(command, expected, result.stdout)


# ----------------------------------------------------------------------------- reference tables


def _page(path: str) -> str:
    return (DOCS / path).read_text()


def test_the_exception_tree_in_the_errors_guide_matches_the_code() -> None:
    block = re.search(r"```text\n(BentoMLException.*?)\n```", _page("guides/errors.md"), re.S)
    assert block is not None
    parents: list[type[BaseException]] = []
    named = set()
    for line in block.group(1).splitlines():
        match = re.match(r"^([│├└─\s]*)(\w+)\s*(.*)$", line)
        assert match is not None, line
        depth = len(match.group(1)) // 4
        cls = getattr(exceptions, match.group(2))
        named.add(cls.__name__)
        if depth:
            assert parents[depth - 1] in cls.__bases__, f"{cls.__name__} under {parents[depth - 1]}"
        parents[depth:] = [cls]
        code = re.match(r"(\d{3})\b", match.group(3))
        if code:
            assert int(cls.error_code) == int(code.group(1)), cls
    public = {name for name in exceptions.__all__ if isinstance(getattr(exceptions, name), type)}
    assert named == public


def test_the_status_table_in_the_errors_guide_matches_the_code() -> None:
    rows = re.findall(r"^\| `?(\d{3})`? \| `(\w+)` \|", _page("guides/errors.md"), re.M)
    assert len(rows) >= 11
    for status, name in rows:
        assert exceptions.exception_for_status(int(status)).__name__ == name, status
