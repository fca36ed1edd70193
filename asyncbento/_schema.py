"""Endpoints from ``/schema.json``: everything about a route that is worked out once.

An :class:`Endpoint` knows its name and route, how its output is decoded, which of its
parameters are files, and an ``inspect.Signature``; :meth:`Endpoint.bind` checks a call's
arguments against it without any I/O.
"""

from __future__ import annotations

import enum
import inspect
import keyword
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ArgumentError, BentoMLException, ResponseDecodeError


class OutputKind(enum.Enum):
    """How a successful answer's body becomes a Python value."""

    JSON = "json"
    ANY = "any"
    TEXT = "text"
    BYTES = "bytes"
    TENSOR = "tensor"
    FILE = "file"
    IMAGE = "image"


class RootKind(enum.Enum):
    """How a root input (``def f(self, value, /)``) is sent as the whole body."""

    TEXT = "text"
    BYTES = "bytes"
    FILE = "file"
    JSON = "json"


def _is_file_schema(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "file"


def _is_file_list_schema(schema: Mapping[str, Any]) -> bool:
    items = schema.get("items")
    return schema.get("type") == "array" and isinstance(items, Mapping) and _is_file_schema(items)


def output_kind(schema: Mapping[str, Any]) -> OutputKind:
    """The decoding rule for an output schema (streams use TEXT or BYTES)."""
    kind = schema.get("type")
    if kind == "file":
        return OutputKind.IMAGE if schema.get("pil") else OutputKind.FILE
    if kind == "tensor":
        return OutputKind.TENSOR
    if kind == "string":
        return OutputKind.BYTES if schema.get("format") == "binary" else OutputKind.TEXT
    if schema.get("is_stream"):
        return OutputKind.TEXT
    if not kind and not schema.get("properties") and not schema.get("anyOf"):
        # Typed Any: the server sends a returned str raw, even as application/json.
        return OutputKind.ANY
    return OutputKind.JSON


def root_kind(schema: Mapping[str, Any]) -> RootKind:
    """The body encoding for a root input schema."""
    kind = schema.get("type")
    if kind == "file":
        return RootKind.FILE
    if kind == "string":
        return RootKind.BYTES if schema.get("format") == "binary" else RootKind.TEXT
    return RootKind.JSON


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": None,
}


def python_annotation(schema: Mapping[str, Any]) -> Any:
    """A readable Python annotation for a JSON schema (for signatures and ``describe``)."""
    kind = schema.get("type")
    if kind == "file":
        return "PIL.Image.Image" if schema.get("pil") else pathlib.Path
    if kind == "tensor":
        return "numpy.ndarray"
    if kind == "string" and schema.get("format") == "binary":
        return bytes
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and items:
            inner = python_annotation(items)
            name = inner if isinstance(inner, str) else getattr(inner, "__name__", "Any")
            return f"list[{name}]"
        return list
    if kind == "object" and "properties" in schema:
        return schema.get("title", "dict")
    if isinstance(kind, str):
        return _JSON_TYPES.get(kind, Any)
    options = schema.get("anyOf")
    if isinstance(options, list) and options:
        names = []
        for option in options:
            inner = python_annotation(option) if isinstance(option, Mapping) else Any
            names.append(
                "None" if inner is None else inner if isinstance(inner, str) else inner.__name__
            )
        return " | ".join(names)
    return Any


def _build_signature(
    params: tuple[str, ...],
    properties: Mapping[str, Any],
    required: frozenset[str],
    root_schema: Mapping[str, Any] | None,
) -> inspect.Signature:
    if root_schema is not None:
        root = inspect.Parameter(
            "value", inspect.Parameter.POSITIONAL_ONLY, annotation=python_annotation(root_schema)
        )
        return inspect.Signature([root])
    parameters: list[inspect.Parameter] = []
    seen_default = False
    for name in params:
        if not name.isidentifier() or keyword.iskeyword(name):
            # Not expressible as a Python parameter; callers pass it with **{...}.
            return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
        prop = properties.get(name, {})
        kind: inspect._ParameterKind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        default: Any = inspect.Parameter.empty
        if name not in required:
            default = prop.get("default") if isinstance(prop, Mapping) else None
            seen_default = True
        elif seen_default:
            kind = inspect.Parameter.KEYWORD_ONLY
        annotation = python_annotation(prop) if isinstance(prop, Mapping) else Any
        parameters.append(inspect.Parameter(name, kind, default=default, annotation=annotation))
    return inspect.Signature(parameters)


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One API route of a service, parsed once from ``/schema.json``.

    Attributes:
        name: The endpoint's (Python) name.
        route: Its HTTP path, e.g. ``/summarize``.
        input_schema: The JSON schema of its input, as the server states it.
        output_schema: The JSON schema of its output.
        is_task: Whether it is a task endpoint (``submit`` and friends).
        is_stream: Whether it answers a stream.
        output: How its answer is decoded.
        root: The kind of its root input, or None when it takes named arguments.
        params: Its parameter names, in order.
        required: The parameters without a default.
        file_fields: Parameters that take one file.
        file_list_fields: Parameters that take a list of files.
        signature: The call signature, as ``inspect.signature`` shows it.
        media_type: A stream's media type, when the schema gives one.
    """

    name: str
    route: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    is_task: bool
    is_stream: bool
    output: OutputKind
    root: RootKind | None
    params: tuple[str, ...]
    required: frozenset[str]
    file_fields: frozenset[str]
    file_list_fields: frozenset[str]
    signature: inspect.Signature
    media_type: str | None = None
    _param_set: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_route(cls, route: Mapping[str, Any]) -> Endpoint:
        """Build an endpoint from one entry of the schema's ``routes`` list."""
        name = route.get("name")
        path = route.get("route")
        if not isinstance(name, str) or not name or not isinstance(path, str):
            raise BentoMLException(f"malformed route in /schema.json: {route!r}")
        input_schema = route.get("input") or {}
        output_schema = route.get("output") or {}
        if not isinstance(input_schema, Mapping) or not isinstance(output_schema, Mapping):
            raise BentoMLException(f"malformed schema for endpoint {name!r}")
        properties = input_schema.get("properties")
        is_root = bool(input_schema.get("root_input")) or not isinstance(properties, Mapping)
        if is_root and isinstance(properties, Mapping) and properties:
            # A root input that is itself a model: BentoML's client sends it as the object.
            is_root = False
        props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
        params = tuple(props)
        required = frozenset(
            n for n in input_schema.get("required", ()) if isinstance(n, str) and n in props
        )
        file_fields = frozenset(
            n for n, s in props.items() if isinstance(s, Mapping) and _is_file_schema(s)
        )
        file_list_fields = frozenset(
            n for n, s in props.items() if isinstance(s, Mapping) and _is_file_list_schema(s)
        )
        is_stream = bool(output_schema.get("is_stream"))
        media_type = output_schema.get("media_type")
        return cls(
            name=name,
            route=path if path.startswith("/") else "/" + path,
            input_schema=input_schema,
            output_schema=output_schema,
            is_task=bool(route.get("is_task")),
            is_stream=is_stream,
            output=output_kind(output_schema),
            root=root_kind(input_schema) if is_root else None,
            params=params,
            required=required,
            file_fields=file_fields,
            file_list_fields=file_list_fields,
            signature=_build_signature(params, props, required, input_schema if is_root else None),
            media_type=media_type if isinstance(media_type, str) else None,
            _param_set=frozenset(params),
        )

    @property
    def has_files(self) -> bool:
        """True when a call must be sent as multipart (some parameter is a file)."""
        return bool(self.file_fields or self.file_list_fields)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Check a call's arguments and return what is sent: a dict, or the root value.

        Raises:
            ArgumentError: an unknown, missing, duplicate or surplus argument (a TypeError).
        """
        if self.root is not None:
            if kwargs or len(args) != 1:
                raise ArgumentError(
                    f"{self.name}() takes exactly one positional argument (its root input); "
                    f"got {len(args)} positional and keyword arguments {sorted(kwargs)}"
                )
            return args[0]
        if args:
            if len(args) > len(self.params):
                raise ArgumentError(
                    f"{self.name}() takes at most {len(self.params)} positional arguments "
                    f"({', '.join(self.params) or 'none'}) but {len(args)} were given"
                )
            values = dict(zip(self.params, args, strict=False))
            if kwargs:
                duplicate = values.keys() & kwargs.keys()
                if duplicate:
                    raise ArgumentError(
                        f"{self.name}() got multiple values for argument(s) {sorted(duplicate)}"
                    )
                values.update(kwargs)
        else:
            values = kwargs
        if not self._param_set.issuperset(values):
            unknown = sorted(set(values) - self._param_set)
            raise ArgumentError(
                f"{self.name}() got unexpected argument(s) {unknown}; it takes {list(self.params)}"
            )
        if not self.required.issubset(values):
            missing = sorted(self.required - values.keys())
            raise ArgumentError(f"{self.name}() missing required argument(s) {missing}")
        return values


def parse_schema(document: Any) -> tuple[str, dict[str, Endpoint]]:
    """Parse a ``/schema.json`` document into the service name and its endpoints by name."""
    if not isinstance(document, Mapping) or not isinstance(document.get("routes"), list):
        raise BentoMLException("the server's /schema.json has no list of routes")
    endpoints: dict[str, Endpoint] = {}
    for route in document["routes"]:
        if not isinstance(route, Mapping):
            raise BentoMLException(f"malformed route in /schema.json: {route!r}")
        try:
            endpoint = Endpoint.from_route(route)
        except RecursionError:
            raise ResponseDecodeError("the server's /schema.json is nested too deeply") from None
        endpoints[endpoint.name] = endpoint
    name = document.get("name")
    return (name if isinstance(name, str) else ""), endpoints
