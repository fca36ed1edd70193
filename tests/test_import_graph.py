"""Unit tests on the package's shape, read from its source: no import cycle, no function longer
than 60 lines, ``_client.py`` under 600 lines.

Every import of one of asyncbento's own modules counts, wherever it stands: at the top, inside
a function (a lazy import hides a cycle, it does not remove it) or under ``TYPE_CHECKING``.
Imports of other packages (lazy imports of optional heavy ones included) are not edges here.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "asyncbento"


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules that ``name`` (at ``path``) imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if target not in known:
                continue
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            # `from . import x` imports the submodule x; `from .m import y` imports m.
            found.update(submodules or {target})
            if submodules and len(submodules) < len(node.names):
                found.add(target)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_is_read_from_the_source() -> None:
    edges = graph()
    assert "asyncbento._endpoints" in edges["asyncbento._client"]
    assert "asyncbento._client" in edges["asyncbento._sync"]
    assert (
        "asyncbento._overload" in edges["asyncbento.integrations.ray"]
    )  # `from .._overload import`
    assert "asyncbento.exceptions" in edges["asyncbento"]  # `from . import exceptions`


def test_no_import_cycle() -> None:
    assert find_cycle(graph()) is None


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(edges) == cycle


def test_a_lazy_or_type_only_import_is_an_edge(tmp_path: pathlib.Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ._b import B\n"
        "def f():\n    from ._c import C\n"
        "import numpy\n"
    )
    path = tmp_path / "asyncbento" / "_a.py"
    path.parent.mkdir()
    path.write_text(source)
    known = {"asyncbento._a", "asyncbento._b", "asyncbento._c"}
    assert imported("asyncbento._a", path, known) == {"asyncbento._b", "asyncbento._c"}


def test_no_function_is_longer_than_60_lines() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 60:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} {lines}")
    assert long == []


def test_the_client_module_stays_small() -> None:
    # New behaviour goes in its own module, with only a thin method on the client.
    assert len((PACKAGE / "_client.py").read_text(encoding="utf-8").splitlines()) < 600
