"""Unit tests: typed client modules generated from stored schemas (no server).

The stored schemas in ``tests/schemas/`` are the ``/schema.json`` of every example service
(fetched from ``bentoml serve``) plus ``shapes.json``, made by hand for what the examples do
not produce: nested models, enums, optional and union fields, lists of files, tensors,
``$ref``, names that are not Python names, byte streams, stream and file-output tasks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types
from typing import Any

import pytest

from asyncbento import AsyncEndpointMethod, AsyncHTTPClient, SyncHTTPClient
from asyncbento._codegen import generate
from asyncbento._drift import schema_changes

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
SCHEMAS = sorted((HERE / "schemas").glob("*.json"))
NOWHERE = "http://127.0.0.1:9"  # never contacted: embedded schema, no readiness wait


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / "schemas" / f"{name}.json").read_text())


def module_name(schema: pathlib.Path) -> str:
    return schema.stem.replace("-", "_").removesuffix("_service") + "_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Every stored schema's client module, and the typed user scripts, in one folder."""
    folder = tmp_path_factory.mktemp("generated")
    for schema in SCHEMAS:
        source = generate(json.loads(schema.read_text()))
        (folder / f"{module_name(schema)}.py").write_text(source)
    for script in (HERE / "typed").glob("*.py"):
        shutil.copy(script, folder / script.name)
    return folder


def import_generated(folder: pathlib.Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_service_has_a_stored_schema() -> None:
    services = set()
    for path in (ROOT / "examples").glob("*.py"):
        services.update(re.findall(r'@bentoml\.service\(\s*name="(\w+)"', path.read_text()))
    assert services >= {"example_service", "clash_service", "auth_service", "capped_service"}
    assert {load(name)["name"] for name in services} == services


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.stem)
def test_generation_is_deterministic(schema: pathlib.Path) -> None:
    document = json.loads(schema.read_text())
    first = generate(document)
    assert generate(json.loads(schema.read_text())) == first
    assert first.endswith("\n") and "\r" not in first
    compile(first, schema.name, "exec")


def test_generation_does_not_depend_on_hash_seeds() -> None:
    program = (
        "import json, sys; from asyncbento._codegen import generate; "
        "sys.stdout.write(generate(json.load(open(sys.argv[1]))))"
    )
    schema = HERE / "schemas" / "shapes.json"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program, str(schema)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {generate(json.loads(schema.read_text()))}


def test_ruff_passes_on_every_generated_module(generated: pathlib.Path) -> None:
    modules = sorted(str(p) for p in generated.glob("*_client.py"))
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent)) or "ruff"
    # The project's rules, and the same rules where asyncbento is a third-party package.
    isolated = ["--isolated", "--select=E,F,W,I,B,UP,PIE,SIM,RUF", "--target-version=py310"]
    isolated.append("--line-length=100")
    for config in (["--config", str(ROOT / "pyproject.toml")], isolated):
        done = subprocess.run(
            [ruff, "check", "--no-cache", *config, *modules], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_on_generated_modules_and_typed_scripts(
    generated: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mypy import api

    monkeypatch.chdir(generated)
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    files = sorted(p.name for p in generated.glob("*.py"))
    stdout, stderr, _ = api.run(
        [
            "--strict",
            "--python-version=3.11",
            "--no-error-summary",
            "--show-error-codes",
            # asyncbento's own modules are checked by `tox -e type` with the project's settings
            # (untyped optional extras such as tqdm allowed); here they only lend their types.
            "--follow-imports=silent",
            f"--cache-dir={ROOT / '.mypy_cache'}",
            *files,
        ]
    )
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    wanted = _expected_errors(generated / "bad_usage.py")
    unexpected = [e for e in errors if not e.startswith("bad_usage.py:")]
    assert not unexpected, "\n".join(unexpected) + stderr
    for line, needle in wanted.items():
        found = [e for e in errors if e.startswith(f"bad_usage.py:{line}:")]
        assert any(needle in e for e in found), (line, needle, found)
    reported = {int(e.split(":")[1]) for e in errors if e.startswith("bad_usage.py:")}
    assert reported == set(wanted), errors


def _expected_errors(script: pathlib.Path) -> dict[int, str]:
    wanted = {}
    for number, line in enumerate(script.read_text().splitlines(), 1):
        if "# error: " in line:
            wanted[number] = line.split("# error: ", 1)[1]
    return wanted


def test_generated_types_read_as_the_schema_says(generated: pathlib.Path) -> None:
    source = (generated / "example_client.py").read_text()
    assert "    def __call__(self, a: int, b: int = 0) -> Awaitable[int]:" in source
    assert "    def __call__(self, value: str, /) -> str:" in source  # root input: positional
    assert "    def __call__(self, value: FileInput, /) -> Awaitable[dict[str, Any]]:" in source
    assert "params: Params | SupportsModelDump" in source
    assert "    nested: NotRequired[Inner | None]" in source
    assert "note: str | None = None" in source
    assert "-> AsyncIterator[str]:" in source and "-> Iterator[str]:" in source
    assert "async def submit(self, x: int, delay: float = 0.5) -> SlowSquareTask:" in source
    assert "def __call__(self, sentences: Sequence[str] = ...) -> npt.NDArray[Any]:" in source
    assert "``sentences=['The sun dips below the horizon.', 'A gentle" in source
    shapes = (generated / "shapes_client.py").read_text()
    assert "images: Sequence[FileInput]," in shapes
    assert 'style: Literal["plain", "fancy"] = "plain",' in shapes
    assert "level: Literal[1, 2, 3] = 2," in shapes
    assert 'mode: Literal["fast", "slow"] | None = None,' in shapes
    assert "ratio: float | str = 1.5," in shapes
    assert "-> Awaitable[list[Image.Image]]:" in shapes
    assert "        matrix: npt.ArrayLike,\n        batch: Sequence[npt.ArrayLike] = ...," in shapes
    assert "        pair: Sequence[int | str] = ...," in shapes
    assert '"color": "Literal[\\"red\\", \\"green\\", \\"blue\\"]",' in shapes
    assert '"dims": "NotRequired[Dims | None]",' in shapes
    assert '"unit-price": "float",' in shapes and '"class": "NotRequired[str]",' in shapes
    assert "    history: list[Event]" in shapes and "    status: Literal" in shapes
    assert "        ref: Point | SupportsModelDump,\n" in shapes  # $ref into $defs
    assert '        kind: Literal["a", "b"],\n' in shapes
    assert ") -> Awaitable[int | str | list[int] | None]:" in shapes
    assert "def __call__(self, value: bytes, /) -> AsyncIterator[bytes]:" in shapes
    assert "async def get(self) -> pathlib.Path:" in shapes  # a file-output task
    assert "def __call__(self, first: int = 0, *, last: int) -> Iterator[str]:" in shapes
    # Parameters Python cannot spell: keywords, as the dynamic client's signature has them.
    assert "    def __call__(self, **kwargs: Any) -> Awaitable[bool]:" in shapes
    assert "    # 'weird-names': untyped, reached with client.call('weird-names', ...)" in shapes
    # 'close' clashes with the client's close(), and 'api_close' is another endpoint's name.
    assert (
        "    api_api_close: CloseEndpoint\n" in shapes
        and "    api_close: ApiCloseEndpoint\n" in shapes
    )
    assert "    api__private: PrivateEndpoint\n" in shapes


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.stem)
async def test_generated_attributes_are_the_dynamic_clients_names(
    generated: pathlib.Path, schema: pathlib.Path
) -> None:
    module = import_generated(generated, module_name(schema))
    async_class, sync_class = _client_classes(module)
    async with async_class(NOWHERE, server_ready_timeout=0) as client:
        bound = {
            n
            for n, v in vars(client).items()
            if isinstance(v, AsyncEndpointMethod) and n.isidentifier()  # see 'weird-names'
        }
        assert bound == set(async_class.__annotations__) - {"_embedded_schema"}
        assert client.service_name == json.loads(schema.read_text())["name"]
    with sync_class(NOWHERE, server_ready_timeout=0) as sync_client:
        names = {
            n for n, v in vars(sync_client).items() if hasattr(v, "endpoint") and n.isidentifier()
        }
        assert names == set(sync_class.__annotations__) - {"_async_class"}
        assert type(sync_client._async) is async_class


def _client_classes(module: types.ModuleType) -> tuple[Any, Any]:
    async_class = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, AsyncHTTPClient) and v is not AsyncHTTPClient
    )
    sync_class = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, SyncHTTPClient) and v is not SyncHTTPClient
    )
    return async_class, sync_class


def test_clashing_names_follow_the_client_rule(generated: pathlib.Path) -> None:
    module = import_generated(generated, "clash_client")
    async_class, sync_class = _client_classes(module)
    assert set(async_class.__annotations__) >= {"api_url", "api_map", "api_with_options", "plain"}
    assert "url" not in async_class.__annotations__
    assert set(sync_class.__annotations__) >= {"api_url", "api_map", "api_with_options", "plain"}
    # `api_map` is an endpoint of its own there, so `map` moves one prefix further.
    assert {"api_api_map", "api_map"} <= set(async_class.__annotations__)


def test_class_name_option() -> None:
    source = generate(load("auth_service"), class_name="my auth")
    assert "class MyAuthAsyncClient(AsyncHTTPClient):" in source
    assert "class MyAuthSyncClient(SyncHTTPClient):" in source


def test_embedded_schema_round_trips(generated: pathlib.Path) -> None:
    for schema in SCHEMAS:
        module = import_generated(generated, module_name(schema))
        stored = json.loads(schema.read_text())
        assert stored == module.SCHEMA


def test_schema_with_quotes_and_backslashes_is_embedded_verbatim() -> None:
    document = load("auth_service")
    document["routes"][0]["input"]["description"] = "it's a \"quoted\" \\ back'''slash"
    namespace: dict[str, Any] = {}
    exec(compile(generate(document), "<generated>", "exec"), namespace)
    assert namespace["SCHEMA"] == document


# ----------------------------------------------------------------------------- drift


def test_no_changes_between_equal_schemas() -> None:
    assert schema_changes(load("example_service"), load("example_service")) == []


def test_schema_changes_name_what_changed() -> None:
    old = load("example_service")
    new = load("example_service")
    routes = {r["name"]: r for r in new["routes"]}
    add = routes["add"]["input"]
    add["properties"]["b"]["type"] = "number"
    add["properties"]["c"] = {"title": "C", "type": "integer"}
    add["required"] = ["a", "c"]
    routes["summarize"]["output"] = {"type": "integer"}
    routes["shout"]["route"] = "/v2/shout"
    new["routes"] = [r for r in new["routes"] if r["name"] != "stats"]
    new["routes"].append(dict(routes["echo"], name="echo2"))
    changes = schema_changes(old, new)
    assert "endpoint 'stats' was removed" in changes
    assert "endpoint 'echo2' was added" in changes
    assert "endpoint 'add': parameter 'c' was added" in changes
    assert (
        "endpoint 'add': parameter 'b' changed from "
        '{"default":0,"title":"B","type":"integer"} to {"default":0,"title":"B","type":"number"}'
    ) in changes
    assert "endpoint 'shout': route changed from '/shout' to '/v2/shout'" in changes
    assert (
        'endpoint \'summarize\': output changed from {"type":"string"} to {"type":"integer"}'
    ) in changes
    assert len(changes) == 6


def test_parameter_order_and_required_changes() -> None:
    old = load("example_service")
    new = load("example_service")
    flags = next(r for r in new["routes"] if r["name"] == "flags")["input"]
    flags["properties"] = dict(reversed(list(flags["properties"].items())))
    flags["required"] = ["flag"]
    changes = schema_changes(old, new)
    assert changes == [
        "endpoint 'flags': parameter order changed from "
        "['flag', 'ratio', 'note'] to ['note', 'ratio', 'flag']",
        "endpoint 'flags': parameter 'flag' is now required",
    ]
