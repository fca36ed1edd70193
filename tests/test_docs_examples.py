"""Every code block marked ``<!-- run -->`` in the docs runs against the real example service.

The block's ``http://localhost:3000`` becomes the test server's URL; each block runs in a fresh
interpreter (as a reader would paste it) and must exit cleanly without writing to stderr.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKED = re.compile(r"<!-- run -->\s*\n```python\n(.*?)\n```", re.DOTALL)


def runnable_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for number, match in enumerate(MARKED.finditer(page.read_text()), start=1):
            blocks.append((f"{page.relative_to(DOCS)}#{number}", match.group(1)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_docs_have_runnable_examples() -> None:
    pages = {name.split("#")[0] for name, _ in BLOCKS}
    assert len(BLOCKS) >= 15
    for page in (
        "index.md",
        "migration.md",
        "guides/files.md",
        "guides/streaming.md",
        "guides/tasks.md",
        "guides/batch.md",
        "guides/errors.md",
        "guides/resilience.md",
        "guides/sync.md",
    ):
        assert page in pages, page


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_docs_example_runs(name: str, code: str, example_url: str, tmp_path: pathlib.Path) -> None:
    assert "http://localhost:3000" in code, "a runnable example calls the example service"
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://localhost:3000", example_url))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stderr}"
    assert result.stderr == "", result.stderr
    assert result.stdout.strip(), f"{name} printed nothing"
