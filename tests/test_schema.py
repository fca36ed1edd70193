"""Unit tests: endpoints parsed from /schema.json, signatures and argument binding."""

from __future__ import annotations

import inspect
import pathlib

import pytest

from asyncbento._schema import Endpoint, OutputKind, RootKind, parse_schema

ADD = {
    "name": "add",
    "route": "/v1/math/add",
    "input": {
        "properties": {
            "a": {"title": "A", "type": "integer"},
            "b": {"default": 0, "title": "B", "type": "integer"},
        },
        "required": ["a"],
        "title": "Input",
        "type": "object",
    },
    "output": {"type": "integer"},
    "is_task": False,
}
SHOUT = {
    "name": "shout",
    "route": "/shout",
    "input": {"type": "string", "root_input": True},
    "output": {"type": "string"},
    "is_task": False,
}
TRANSCRIBE = {
    "name": "transcribe",
    "route": "/transcribe",
    "input": {
        "properties": {
            "audio_file": {"format": "binary", "title": "Audio File", "type": "file"},
            "extra": {"items": {"format": "binary", "type": "file"}, "type": "array"},
            "language": {"default": "en", "type": "string"},
        },
        "required": ["audio_file"],
        "type": "object",
    },
    "output": {"additionalProperties": True, "type": "object"},
    "is_task": False,
}


def test_route_and_flags() -> None:
    endpoint = Endpoint.from_route(ADD)
    assert endpoint.name == "add"
    assert endpoint.route == "/v1/math/add"
    assert endpoint.params == ("a", "b")
    assert endpoint.required == frozenset({"a"})
    assert endpoint.root is None
    assert not endpoint.has_files
    assert endpoint.output is OutputKind.JSON


def test_signature_has_names_defaults_and_order() -> None:
    signature = Endpoint.from_route(ADD).signature
    assert list(signature.parameters) == ["a", "b"]
    assert signature.parameters["a"].default is inspect.Parameter.empty
    assert signature.parameters["b"].default == 0
    assert signature.parameters["a"].annotation is int
    assert str(signature) == "(a: int, b: int = 0)"


def test_required_after_default_becomes_keyword_only() -> None:
    route = {
        "name": "f",
        "route": "/f",
        "input": {
            "properties": {"x": {"type": "integer", "default": 1}, "y": {"type": "string"}},
            "required": ["y"],
            "type": "object",
        },
        "output": {},
    }
    signature = Endpoint.from_route(route).signature
    assert signature.parameters["y"].kind is inspect.Parameter.KEYWORD_ONLY


def test_bind_positional_and_keyword() -> None:
    endpoint = Endpoint.from_route(ADD)
    assert endpoint.bind((1,), {}) == {"a": 1}
    assert endpoint.bind((1, 2), {}) == {"a": 1, "b": 2}
    assert endpoint.bind((), {"a": 5, "b": 6}) == {"a": 5, "b": 6}
    assert endpoint.bind((3,), {"b": 4}) == {"a": 3, "b": 4}


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ((), {}, ["missing", "'a'"]),
        ((), {"b": 1}, ["missing", "'a'"]),
        ((), {"a": 1, "zz": 2}, ["unexpected", "'zz'"]),
        ((1,), {"a": 2}, ["multiple values", "'a'"]),
        ((1, 2, 3), {}, ["at most 2 positional", "3 were given"]),
    ],
)
def test_bind_errors_name_the_argument(
    args: tuple[object, ...], kwargs: dict[str, object], words: list[str]
) -> None:
    endpoint = Endpoint.from_route(ADD)
    with pytest.raises(TypeError) as info:
        endpoint.bind(args, dict(kwargs))
    for word in words:
        assert word in str(info.value)
    assert "add()" in str(info.value)


def test_root_input_takes_exactly_one_positional() -> None:
    endpoint = Endpoint.from_route(SHOUT)
    assert endpoint.root is RootKind.TEXT
    assert endpoint.bind(("hi",), {}) == "hi"
    assert str(endpoint.signature) == "(value: str, /)"
    for args, kwargs in [((), {}), (("a", "b"), {}), ((), {"text": "x"})]:
        with pytest.raises(TypeError, match="exactly one positional"):
            endpoint.bind(args, kwargs)


def test_file_fields_and_annotations() -> None:
    endpoint = Endpoint.from_route(TRANSCRIBE)
    assert endpoint.file_fields == frozenset({"audio_file"})
    assert endpoint.file_list_fields == frozenset({"extra"})
    assert endpoint.has_files
    assert endpoint.signature.parameters["audio_file"].annotation is pathlib.Path
    assert endpoint.signature.parameters["extra"].annotation == "list[Path]"


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ({"type": "string"}, OutputKind.TEXT),
        ({"type": "string", "format": "binary"}, OutputKind.BYTES),
        ({"type": "tensor", "format": "numpy-array"}, OutputKind.TENSOR),
        ({"type": "file", "format": "binary"}, OutputKind.FILE),
        ({"type": "file", "format": "image", "pil": True}, OutputKind.IMAGE),
        ({"type": "integer"}, OutputKind.JSON),
        ({"additionalProperties": True, "type": "object"}, OutputKind.JSON),
        ({"type": "string", "is_stream": True, "media_type": "text/event-stream"}, OutputKind.TEXT),
    ],
)
def test_output_kinds(output: dict[str, object], kind: OutputKind) -> None:
    route = dict(ADD, output=output)
    assert Endpoint.from_route(route).output is kind


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": "string", "root_input": True}, RootKind.TEXT),
        ({"type": "string", "format": "binary", "root_input": True}, RootKind.BYTES),
        ({"type": "file", "format": "binary", "root_input": True}, RootKind.FILE),
        ({"type": "array", "items": {"type": "number"}, "root_input": True}, RootKind.JSON),
    ],
)
def test_root_kinds(schema: dict[str, object], kind: RootKind) -> None:
    route = dict(SHOUT, input=schema)
    assert Endpoint.from_route(route).root is kind


def test_parse_schema_and_stream_task_flags() -> None:
    stream = {
        "name": "gen",
        "route": "/gen",
        "input": {"properties": {}, "type": "object"},
        "output": {"type": "string", "is_stream": True, "media_type": "text/event-stream"},
        "is_task": False,
    }
    task = dict(ADD, name="job", route="/job", is_task=True)
    name, endpoints = parse_schema({"name": "svc", "routes": [ADD, SHOUT, stream, task]})
    assert name == "svc"
    assert sorted(endpoints) == ["add", "gen", "job", "shout"]
    assert endpoints["gen"].is_stream and not endpoints["gen"].is_task
    assert endpoints["job"].is_task
    assert endpoints["gen"].bind((), {}) == {}


@pytest.mark.parametrize("document", [None, [], {"routes": "x"}, {"routes": [{"name": 1}]}])
def test_malformed_schema_is_a_bentoml_exception(document: object) -> None:
    from asyncbento.exceptions import BentoMLException

    with pytest.raises(BentoMLException):
        parse_schema(document)
