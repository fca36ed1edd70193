"""JSON schema -> Python annotation text, for generated clients.

:class:`Annotator` turns one schema into the text of a type (``list[str]``, ``Params | None``)
and collects what that text needs: named ``TypedDict`` models and ``Literal`` aliases (each
defined once, in the order first met), and the imports. Inputs and outputs differ: an input
list is a ``Sequence``, a file input is any file asyncbento uploads (``FileInput``), a tensor
input anything numpy takes; outputs are what the client decodes (``list``, ``pathlib.Path``,
PIL images, numpy arrays).
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Mode = Literal["in", "out"]

# Names the module itself defines or imports: a model never takes one of them.
RESERVED = frozenset(
    {
        "IO",
        "TYPE_CHECKING",
        "Any",
        "AsyncHTTPClient",
        "AsyncIterator",
        "Awaitable",
        "FileInput",
        "Image",
        "Iterator",
        "Literal",
        "Mapping",
        "NotRequired",
        "Protocol",
        "ResultStatus",
        "SCHEMA",
        "Sequence",
        "ServerSentEvent",
        "SupportsModelDump",
        "SyncHTTPClient",
        "TypedDict",
        "annotations",
        "json",
        "npt",
        "os",
        "pathlib",
        "sys",
    }
)

LINE_LIMIT = 100
_SIMPLE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def camel(text: str, fallback: str = "Model") -> str:
    """``example_service`` -> ``ExampleService``; ``Audio File`` -> ``AudioFile``."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", text) if w]
    name = "".join(w[0].upper() + w[1:] for w in words)
    if not name:
        return fallback
    return name if name[0].isalpha() else fallback + name


def literal_text(value: Any) -> str | None:
    """``value`` as a ``Literal`` member / default, or None when it cannot be one."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is also a valid Python string literal
    return None


def union(parts: Iterable[str]) -> str:
    """``a | b``, without repeats, ``None`` last; ``Any`` swallows everything."""
    seen: list[str] = []
    for part in parts:
        for piece in split_union(part):
            if piece not in seen:
                seen.append(piece)
    if "Any" in seen or not seen:
        return "Any"
    literals = [p for p in seen if p.startswith("Literal[")]
    if len(literals) > 1:  # Literal["a"] | Literal["b"] -> Literal["a", "b"]
        members = dict.fromkeys(m for p in literals for m in literal_members(p))
        merged = f"Literal[{', '.join(members)}]"
        seen = [merged if p == literals[0] else p for p in seen if p not in literals[1:]]
    if "None" in seen:
        seen.remove("None")
        seen.append("None")
    return " | ".join(seen)


def literal_members(text: str) -> list[str]:
    """The members of ``Literal[a, b]`` as written (``a``, ``b``)."""
    return [m.strip() for m in text[len("Literal[") : -1].split(", ")]


def split_union(text: str) -> list[str]:
    """The pieces of ``a | b[c | d]`` at the top level (``a``, ``b[c | d]``)."""
    pieces, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char in "[("
        depth -= char in "])"
        if depth == 0 and text.startswith(" | ", index):
            pieces.append(text[start:index])
            start = index + 3
    pieces.append(text[start:])
    return pieces


class Names:
    """Unique module-level names, chosen deterministically (``Params``, ``Params2``, ...)."""

    def __init__(self) -> None:
        self._taken: set[str] = set(RESERVED)

    def claim(self, wanted: str) -> str:
        """A free name like ``wanted``, now taken."""
        name, number = wanted, 1
        while name in self._taken or keyword.iskeyword(name):
            number += 1
            name = f"{wanted}{number}"
        self._taken.add(name)
        return name


class Annotator:
    """Annotation text for schemas; remembers the definitions and imports it needs."""

    def __init__(self, names: Names, definitions: Mapping[str, Any] | None = None) -> None:
        self.names = names
        self.needs: set[str] = set()
        self.blocks: list[str] = []  # model and alias definitions, in the order first met
        self._defs = definitions or {}
        self._by_key: dict[str, str] = {}
        self.models: set[str] = set()  # the TypedDict names

    # ------------------------------------------------------------------ dispatch

    def annotation(self, schema: Any, where: str, mode: Mode) -> str:
        """The type of a value with this schema; ``where`` names an untitled model."""
        if not isinstance(schema, Mapping) or not schema:
            return "Any"
        if isinstance(schema.get("$ref"), str):
            return self._reference(schema["$ref"], mode)
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._literal(schema["enum"], schema, where, mode)
        if "const" in schema:
            return self._literal([schema["const"]], schema, where, mode)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return union(self.annotation(o, where, mode) for o in options)
        options = schema.get("allOf")
        if isinstance(options, list) and len(options) == 1:
            return self.annotation(options[0], where, mode)
        kind = schema.get("type")
        if isinstance(kind, list):
            return union(self._by_type(k, schema, where, mode) for k in kind)
        return self._by_type(kind, schema, where, mode)

    def _by_type(self, kind: Any, schema: Mapping[str, Any], where: str, mode: Mode) -> str:
        if kind == "file":
            if mode == "in":
                self.needs.add("FileInput")
                return "FileInput"
            self.needs.add("Image" if schema.get("pil") else "pathlib")
            return "Image.Image" if schema.get("pil") else "pathlib.Path"
        if kind == "tensor":
            self.needs.add("npt")
            return "npt.ArrayLike" if mode == "in" else "npt.NDArray[Any]"
        if kind == "string" and schema.get("format") == "binary":
            return "bytes"
        if isinstance(kind, str) and kind in _SIMPLE:
            return _SIMPLE[kind]
        if kind == "array":
            return self._array(schema, where, mode)
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, where, mode)
        return "Any"

    # ------------------------------------------------------------------ containers

    def _array(self, schema: Mapping[str, Any], where: str, mode: Mode) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            item = union(self.annotation(p, f"{where}Item", mode) for p in prefix)
        else:
            item = self.annotation(schema.get("items"), f"{where}Item", mode)
        if mode == "in":
            self.needs.add("Sequence")
            return f"Sequence[{item}]"
        return f"list[{item}]"

    def _object(self, schema: Mapping[str, Any], where: str, mode: Mode) -> str:
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and properties:
            return self._model(schema, properties, where)
        extra = schema.get("additionalProperties")
        value = (
            self.annotation(extra, f"{where}Value", mode) if isinstance(extra, Mapping) else "Any"
        )
        if mode == "in":
            self.needs.add("Mapping")
            return f"Mapping[str, {value}]"
        return f"dict[str, {value}]"

    # ------------------------------------------------------------------ named definitions

    def _reference(self, reference: str, mode: Mode) -> str:
        known = self._by_key.get(f"$ref:{reference}")
        if known is not None:
            return known
        name = reference.rsplit("/", 1)[-1]
        target = (
            self._defs.get(name) if reference.startswith(("#/$defs/", "#/definitions/")) else None
        )
        if not isinstance(target, Mapping):
            return "Any"
        properties = target.get("properties")
        if isinstance(properties, Mapping) and properties:
            return self._model(target, properties, name, key=f"$ref:{reference}")
        return self.annotation(target, camel(name), mode)

    def _literal(self, values: list[Any], schema: Mapping[str, Any], where: str, mode: Mode) -> str:
        members = [literal_text(v) for v in values]
        if any(m is None for m in members):  # e.g. floats: fall back to the plain type
            plain = {k: v for k, v in schema.items() if k not in ("enum", "const")}
            return self.annotation(plain, where, mode)
        self.needs.add("Literal")
        return f"Literal[{', '.join(m for m in members if m is not None)}]"

    def _model(
        self,
        schema: Mapping[str, Any],
        properties: Mapping[str, Any],
        where: str,
        key: str | None = None,
    ) -> str:
        shape = {k: v for k, v in schema.items() if k not in ("title", "description", "default")}
        key = key or "model:" + json.dumps(shape, sort_keys=True, default=str)
        known = self._by_key.get(key)
        if known is not None:
            return known
        title = schema.get("title")
        wanted = title.removesuffix("IODescriptor") if isinstance(title, str) and title else ""
        name = self.names.claim(camel(wanted or where))
        self._by_key[key] = name  # before the fields: a model may contain itself
        required = schema.get("required")
        required_set = set(required) if isinstance(required, list) else set()
        fields = []
        for field, field_schema in properties.items():
            text = self.annotation(field_schema, f"{name}{camel(field)}", "out")
            if isinstance(field_schema, Mapping) and field_schema.get("default", 0) is None:
                text = union([text, "None"])
            if field not in required_set:
                self.needs.add("NotRequired")
                text = f"NotRequired[{text}]"
            fields.append((field, text))
        self.models.add(name)
        self.blocks.append(render_typed_dict(name, fields, schema.get("description")))
        self.needs.add("TypedDict")
        return name


def render_typed_dict(name: str, fields: list[tuple[str, str]], description: Any) -> str:
    """A ``TypedDict`` definition (the functional form when a key is not an identifier)."""
    doc = description if isinstance(description, str) and description.strip() else None
    if all(f.isidentifier() and not keyword.iskeyword(f) for f, _ in fields):
        lines = [f"class {name}(TypedDict):"]
        lines.append(
            f"    {docstring(doc or 'An object of the service: a plain dict at run time.')}"
        )
        lines.append("")
        lines += [f"    {field}: {text}" for field, text in fields]
        return "\n".join(lines) + "\n"
    # Quoted types: the functional form evaluates its values when the module is imported.
    items = "".join(f"        {json.dumps(f)}: {json.dumps(t)},\n" for f, t in fields)
    return f'{name} = TypedDict(\n    "{name}",\n    {{\n{items}    }},\n)\n'


def docstring(text: str, indent: str = "    ") -> str:
    """A triple-quoted docstring for ``text``, wrapped to the line limit at ``indent``."""
    cleaned = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    width = LINE_LIMIT - len(indent)
    lines: list[str] = []
    for paragraph in cleaned.split("\n"):
        size = width - 6 if not lines else width
        lines += _wrap(paragraph, size) or [""]
    if len(lines) == 1:
        return f'"""{lines[0]}"""'
    body = "\n".join(f"{indent}{line}".rstrip() for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{indent}"""'


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
