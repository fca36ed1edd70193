"""Typed clients generated from a service's ``/schema.json`` (``asyncbento generate``).

:func:`generate` is pure: a schema document in, the text of one self-contained Python module
out, byte-identical for the same document. The module holds an async and a sync client class
(subclasses of :class:`~asyncbento.AsyncHTTPClient` / :class:`~asyncbento.SyncHTTPClient`)
that embed the schema (so set-up skips the ``/schema.json`` round trip) and declare one typed
attribute per endpoint. The attributes are only annotations: at run time the client binds
its ordinary endpoint methods under the same names (the registry's clash rule), so a
generated client returns exactly what the dynamic one does. ``Protocol`` classes give those
attributes their parameter and return types; ``TypedDict`` s and ``Literal`` s describe the
service's models and enums.

Layout: ``annotations.py`` (JSON schema -> type text), ``endpoints.py`` (one endpoint's
protocols), this module (the whole file).
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Mapping
from typing import Any

from .._endpoints import attribute_names
from .._schema import Endpoint, parse_schema
from .annotations import LINE_LIMIT, Annotator, Names, camel, docstring
from .endpoints import ProtocolNames, render_protocols, typed_parts

__all__ = ["client_class_names", "generate"]

_TYPING_NAMES = ("Any", "IO", "Literal", "Protocol", "TypedDict")
_ABC_NAMES = ("AsyncIterator", "Awaitable", "Iterator", "Mapping", "Sequence")


def client_class_names(
    document: Mapping[str, Any], class_name: str | None = None
) -> tuple[str, str]:
    """The async and sync class names for a service (``ExampleServiceAsyncClient``, ...)."""
    base = camel(class_name or str(document.get("name") or ""), "Service")
    return f"{base}AsyncClient", f"{base}SyncClient"


def generate(document: Mapping[str, Any], class_name: str | None = None) -> str:
    """The source of a typed client module for the service ``document`` describes.

    Args:
        document: A ``/schema.json`` document (as the service serves it).
        class_name: Base of the class names (default: the service's name, in CamelCase).

    Returns:
        Python source that passes ``ruff`` and ``mypy --strict`` as it is.

    Raises:
        BentoMLException: the document is not a service schema.
    """
    service, endpoints = parse_schema(document)
    names = Names()
    async_name, sync_name = (names.claim(n) for n in client_class_names(document, class_name))
    definitions = document.get("$defs") or document.get("definitions")
    annotator = Annotator(names, definitions if isinstance(definitions, Mapping) else None)
    protocols: list[str] = []
    attributes: list[tuple[str, ProtocolNames]] = []
    skipped: list[str] = []
    for name in sorted(endpoints):
        endpoint = endpoints[name]
        if name == "__call__" or not name.isidentifier() or keyword.iskeyword(name):
            skipped.append(name)  # __call__ is the client's own; others only call() reaches
            continue
        typed = typed_parts(endpoint, annotator)
        protocol_names = ProtocolNames(endpoint, names)
        protocols += render_protocols(endpoint, typed, protocol_names)
        attributes.append((name, protocol_names))
    needs = annotator.needs | _protocol_needs(endpoints)
    parts = [
        _header(service, async_name, sync_name),
        _imports(needs),
        _schema_constant(document),
        _MODEL_DUMP if "SupportsModelDump" in needs else "",
        *annotator.blocks,
        *protocols,
        _clients(service, async_name, sync_name, attributes, skipped),
    ]
    head, imports, *body = (part.rstrip("\n") for part in parts if part)
    # One blank line after the imports (isort's rule before a non-definition), two elsewhere.
    return f"{head}\n\n{imports}\n\n" + "\n\n\n".join(body) + "\n"


def _protocol_needs(endpoints: Mapping[str, Endpoint]) -> set[str]:
    needs = {"Protocol", "Any"}
    for endpoint in endpoints.values():
        if endpoint.is_stream:
            needs |= {"AsyncIterator", "Iterator", "ServerSentEvent"}
        else:
            needs.add("Awaitable")
        if endpoint.is_task:
            needs.add("ResultStatus")
    return needs


def _header(service: str, async_name: str, sync_name: str) -> str:
    from .._version import __version__

    text = (
        f"Typed clients for the BentoML service ``{service}`` (generated: do not edit).\n\n"
        f"Made by ``asyncbento generate`` (asyncbento {__version__}) from the service's "
        "``/schema.json``; regenerate it when the service changes. "
        f"``{async_name}`` and ``{sync_name}`` are asyncbento clients with one typed "
        "attribute per endpoint. They use the schema embedded below instead of fetching "
        "``/schema.json``; ``check_schema=True`` fetches the live one at set-up and raises "
        "``asyncbento.exceptions.SchemaMismatch``, naming what changed, if it differs."
    )
    return docstring(text, "")


def _sorted_names(names: set[str]) -> str:
    # isort's order: CONSTANTS, then Classes, then the rest, each alphabetical.
    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    return ", ".join(sorted(names, key=key))


def _imports(needs: set[str]) -> str:
    modules = {"json"} | (needs & {"pathlib"})
    modules |= {"os"} if "FileInput" in needs else set()
    modules |= {"sys"} if "NotRequired" in needs else set()
    stdlib = ["from __future__ import annotations", ""]
    stdlib += [f"import {m}" for m in sorted(modules)]
    abc = {n for n in _ABC_NAMES if n in needs}
    if abc:
        stdlib.append(f"from collections.abc import {_sorted_names(abc)}")
    typing = {n for n in _TYPING_NAMES if n in needs}
    if "FileInput" in needs:
        typing.add("IO")
    typing.add("TYPE_CHECKING")  # the clients' __getattr__ for type checkers
    stdlib.append(f"from typing import {_sorted_names(typing)}")
    ours = {"AsyncHTTPClient", "NotAnEndpoint", "SyncHTTPClient"}
    ours |= needs & {"ResultStatus", "ServerSentEvent"}
    blocks = ["\n".join(stdlib), f"from asyncbento import {_sorted_names(ours)}"]
    if "NotRequired" in needs:
        blocks.append(
            "if sys.version_info >= (3, 11):\n    from typing import NotRequired\n"
            "else:\n    from typing_extensions import NotRequired"
        )
    checking = _type_checking_block(needs)
    if checking:
        blocks.append(checking)
    return "\n\n".join(blocks)


def _type_checking_block(needs: set[str]) -> str:
    lines = []
    if "npt" in needs:
        lines.append("    import numpy.typing as npt")
    if needs & {"Image", "FileInput"}:
        lines.append("    from PIL import Image")
    if "FileInput" in needs:
        lines += [
            "",
            "    # Whatever asyncbento uploads: a path, a file:// or http(s):// URL, bytes,",
            "    # an open binary file, or a PIL image.",
            "    FileInput = os.PathLike[str] | str | bytes | IO[bytes] | Image.Image",
        ]
    return "if TYPE_CHECKING:\n" + "\n".join(lines) if lines else ""


def _schema_constant(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False).replace("'", "\\u0027")
    long = any(len(line) > LINE_LIMIT for line in text.splitlines())
    noqa = "  # noqa: E501" if long else ""
    return (
        "# The /schema.json this module was generated from (used instead of fetching it).\n"
        f"SCHEMA: dict[str, Any] = json.loads(\n    r'''{text}'''\n){noqa}"
    )


_MODEL_DUMP = '''class SupportsModelDump(Protocol):
    """A pydantic model instance: sent as its JSON form, as a dict would be."""

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]:
        """The model as a dict."""
'''


def _clients(
    service: str,
    async_name: str,
    sync_name: str,
    attributes: list[tuple[str, ProtocolNames]],
    skipped: list[str],
) -> str:
    from .._client import AsyncHTTPClient
    from .._sync import SyncHTTPClient

    every = [n for n, _ in attributes] + skipped
    async_attributes = attribute_names(every, set(dir(AsyncHTTPClient)))
    sync_attributes = attribute_names(every, set(dir(SyncHTTPClient)))
    async_lines = [f"    {async_attributes[n]}: {p.endpoint}" for n, p in attributes]
    sync_lines = [f"    {sync_attributes[n]}: {p.sync_endpoint}" for n, p in attributes]
    untyped = [f"    # {n!r}: untyped, reached with client.call({n!r}, ...)" for n in skipped]
    async_doc = docstring(f"The async client of ``{service}``, with typed endpoints.")
    sync_doc = docstring(f"The sync client of ``{service}``, with typed endpoints.")
    unknown = [
        "",
        "    if TYPE_CHECKING:  # a name that is none of the endpoints above: a type error",
        "",
        "        def __getattr__(self, name: str) -> NotAnEndpoint: ...",
    ]
    return "\n".join(
        [
            f"class {async_name}(AsyncHTTPClient):",
            f"    {async_doc}",
            "",
            "    _embedded_schema = SCHEMA",
            "",
            *async_lines,
            *untyped,
            *unknown,
            "",
            "",
            f"class {sync_name}(SyncHTTPClient):",
            f"    {sync_doc}",
            "",
            f"    _async_class = {async_name}",
            "",
            *sync_lines,
            *untyped,
            *unknown,
        ]
    )
