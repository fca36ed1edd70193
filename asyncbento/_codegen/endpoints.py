"""One endpoint -> the typed ``Protocol`` classes that describe its client attribute.

For each endpoint the generated module has an async and a sync protocol (``AddEndpoint``,
``AddSyncEndpoint``) whose ``__call__`` has the endpoint's parameters, in order and of the
same kinds as the dynamic client's signature, and its decoded output type; task endpoints
also get typed ``submit`` / ``get`` / ``retry`` and a typed task protocol. Nothing here runs
in the generated module: the client's real endpoint methods are what users call.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._schema import Endpoint, OutputKind
from .annotations import (
    LINE_LIMIT,
    Annotator,
    Names,
    camel,
    docstring,
    literal_members,
    literal_text,
    split_union,
    union,
)

_OUTPUT_TYPES = {
    OutputKind.FILE: "pathlib.Path",
    OutputKind.IMAGE: "Image.Image",
    OutputKind.TENSOR: "npt.NDArray[Any]",
    OutputKind.BYTES: "bytes",
    OutputKind.TEXT: "str",
    OutputKind.ANY: "Any",
}
_OUTPUT_NEEDS = {"pathlib.Path": "pathlib", "Image.Image": "Image", "npt.NDArray[Any]": "npt"}
_SIMPLE_DEFAULTS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


@dataclass(frozen=True)
class Typed:
    """What the protocols of one endpoint need: parameters, output type and docstring."""

    params: list[str]
    output: str
    doc: str


def output_type(endpoint: Endpoint, annotator: Annotator) -> str:
    """The type of what a call returns once decoded (a stream's item type for streams)."""
    if endpoint.is_stream:
        return "bytes" if endpoint.output is OutputKind.BYTES else "str"
    known = _OUTPUT_TYPES.get(endpoint.output)
    if known is not None:
        if known in _OUTPUT_NEEDS:
            annotator.needs.add(_OUTPUT_NEEDS[known])
        return known
    return annotator.annotation(endpoint.output_schema, f"{camel(endpoint.name)}Output", "out")


def _default(value: Any, annotation: str) -> str | None:
    """``value`` as a default of a parameter typed ``annotation``, if it type-checks."""
    text = repr(value) if isinstance(value, float) else literal_text(value)
    if text is None:
        return None
    for piece in split_union(annotation):
        kinds = _SIMPLE_DEFAULTS.get(piece)
        if piece == "Any" or (value is None and piece == "None"):
            return text
        if value is not None and kinds and type(value) in kinds:
            return text
        if piece.startswith("Literal[") and text in literal_members(piece):
            return text
    return None


def _accepts_model(annotation: str, models: set[str]) -> bool:
    return any(piece in models for piece in split_union(annotation))


def _parameter(
    endpoint: Endpoint, parameter: inspect.Parameter, annotator: Annotator, shown: list[str]
) -> str:
    properties = endpoint.input_schema.get("properties")
    prop = properties.get(parameter.name, {}) if isinstance(properties, Mapping) else {}
    where = f"{camel(endpoint.name)}{camel(parameter.name)}"
    text = annotator.annotation(prop, where, "in")
    if _accepts_model(text, annotator.models):  # a pydantic model instance is sent as its JSON form
        annotator.needs.add("SupportsModelDump")
        text = union([text, "SupportsModelDump"])
    if parameter.default is inspect.Parameter.empty:
        return f"{parameter.name}: {text}"
    has_default = isinstance(prop, Mapping) and "default" in prop
    if has_default and prop["default"] is None:
        text = union([text, "None"])
    default = _default(prop["default"], text) if has_default else None
    if default is None:
        if has_default:
            shown.append(f"``{parameter.name}={prop['default']!r}``")
        default = "..."
    return f"{parameter.name}: {text} = {default}"


def typed_parts(endpoint: Endpoint, annotator: Annotator) -> Typed:
    """The parameters (``/`` and ``*`` included), output type and docstring of one endpoint."""
    params: list[str] = []
    shown: list[str] = []
    values = list(endpoint.signature.parameters.values())
    if values and values[0].kind is inspect.Parameter.VAR_KEYWORD:
        params.append("**kwargs: Any")  # a name Python cannot spell: as the dynamic client
    elif endpoint.root is not None:
        schema = {k: v for k, v in endpoint.input_schema.items() if k != "root_input"}
        params += [f"value: {annotator.annotation(schema, camel(endpoint.name), 'in')}", "/"]
    else:
        for parameter in values:
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in params:
                params.append("*")
            params.append(_parameter(endpoint, parameter, annotator, shown))
    return Typed(params, output_type(endpoint, annotator), _doc(endpoint, shown))


def _doc(endpoint: Endpoint, shown: list[str]) -> str:
    kind = "stream" if endpoint.is_stream else "task" if endpoint.is_task else "endpoint"
    lines = [f"Call the ``{endpoint.name}`` {kind} (POST {endpoint.route})."]
    for key in ("description", "doc"):
        text = endpoint.input_schema.get(key)
        if isinstance(text, str) and text.strip() and key != "title":
            lines += ["", text.strip()]
            break
    if shown:
        lines += ["", f"Defaults (applied by the service): {', '.join(shown)}."]
    return "\n".join(lines)


def signature(name: str, params: list[str], returns: str, prefix: str = "def") -> str:
    """``def name(self, ...) -> returns:``, wrapped one parameter a line when too long."""
    flat = f"    {prefix} {name}({', '.join(['self', *params])}) -> {returns}:"
    if len(flat) <= LINE_LIMIT:
        return flat
    inner = "".join(f"        {p},\n" for p in ["self", *params])
    return f"    {prefix} {name}(\n{inner}    ) -> {returns}:"


def method(name: str, params: list[str], returns: str, doc: str, prefix: str = "def") -> str:
    """One protocol member: its signature and docstring (the docstring is the body)."""
    return f"{signature(name, params, returns, prefix)}\n        {docstring(doc, '        ')}\n"


class ProtocolNames:
    """The protocol class names of one endpoint, claimed once."""

    def __init__(self, endpoint: Endpoint, names: Names) -> None:
        base = camel(endpoint.name, "Endpoint")
        self.endpoint = names.claim(f"{base}Endpoint")
        self.sync_endpoint = names.claim(f"{base}SyncEndpoint")
        self.task = names.claim(f"{base}Task") if endpoint.is_task else ""
        self.sync_task = names.claim(f"{base}SyncTask") if endpoint.is_task else ""


def render_protocols(endpoint: Endpoint, typed: Typed, names: ProtocolNames) -> list[str]:
    """The protocol class definitions of one endpoint (tasks first, then the endpoints)."""
    blocks = []
    if endpoint.is_task:
        blocks.append(_task_protocol(endpoint, names.task, typed.output, is_async=True))
        blocks.append(_task_protocol(endpoint, names.sync_task, typed.output, is_async=False))
    blocks.append(_endpoint_protocol(endpoint, typed, names.endpoint, names.task, True))
    blocks.append(_endpoint_protocol(endpoint, typed, names.sync_endpoint, names.sync_task, False))
    return blocks


def _endpoint_protocol(
    endpoint: Endpoint, typed: Typed, name: str, task: str, is_async: bool
) -> str:
    flavour = "async" if is_async else "sync"
    doc = docstring(f"The ``{endpoint.name}`` endpoint of the {flavour} client.")
    head = f"class {name}(Protocol):\n    {doc}\n"
    if endpoint.is_stream:
        returns = f"AsyncIterator[{typed.output}]" if is_async else f"Iterator[{typed.output}]"
    else:
        returns = f"Awaitable[{typed.output}]" if is_async else typed.output
    members = [method("__call__", typed.params, returns, typed.doc)]
    if endpoint.is_stream:
        events = "AsyncIterator[ServerSentEvent]" if is_async else "Iterator[ServerSentEvent]"
        members.append(
            method("events", typed.params, events, "The stream parsed as Server-Sent Events.")
        )
    if endpoint.is_task:
        members += _task_operations(typed, task, is_async)
    return head + "".join(f"\n{m}" for m in members)


def _task_operations(typed: Typed, task: str, is_async: bool) -> list[str]:
    prefix = "async def" if is_async else "def"
    by_id = ["task_id: str"]
    return [
        method("submit", typed.params, task, "Submit a task; returns its handle.", prefix),
        method("get_status", by_id, "ResultStatus", "The status of a task.", prefix),
        method("get", by_id, typed.output, "The output of a finished task.", prefix),
        method("cancel", by_id, "None", "Ask the server to cancel a task.", prefix),
        method("retry", by_id, task, "Run a task's input again, as a new task.", prefix),
    ]


def _task_protocol(endpoint: Endpoint, name: str, output: str, is_async: bool) -> str:
    prefix = "async def" if is_async else "def"
    wait = ["timeout: float | None = None"]
    members = [
        method("get_status", [], "ResultStatus", "The task's current status.", prefix),
        method("get", [], output, "The task's output (it must have finished).", prefix),
        method("cancel", [], "None", "Ask the server to cancel the task.", prefix),
        method("retry", [], name, "Run the task's input again, as a new task.", prefix),
        method("wait", wait, output, "Wait for the task to finish; its output.", prefix),
        method("result", wait, output, "Wait for the task to finish; its output.", prefix),
    ]
    flavour = "" if is_async else " (sync client)"
    doc = docstring(f"A submitted ``{endpoint.name}`` task{flavour}.")
    head = f"class {name}(Protocol):\n    {doc}\n\n    id: str\n"
    return head + "".join(f"\n{m}" for m in members)
