"""Does a live service still match the schema a generated client was made from?

:func:`schema_changes` lists the differences between two ``/schema.json`` documents, one
readable line each (an endpoint added or removed, a parameter added, removed, moved, retyped
or made required, an output or route changed); :func:`check_schema` raises
:class:`~asyncbento.exceptions.SchemaMismatch` naming them. Only generated clients created with
``check_schema=True`` use it, once, at set-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .exceptions import SchemaMismatch

_SHOWN = 120


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _short(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _routes(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    routes = document.get("routes")
    if not isinstance(routes, list):
        return {}
    return {
        r["name"]: r for r in routes if isinstance(r, Mapping) and isinstance(r.get("name"), str)
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _parameter_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    where = f"endpoint {name!r}"
    old_props, new_props = _mapping(old.get("properties")), _mapping(new.get("properties"))
    changes = [f"{where}: parameter {p!r} was removed" for p in old_props if p not in new_props]
    changes += [f"{where}: parameter {p!r} was added" for p in new_props if p not in old_props]
    for param in (p for p in old_props if p in new_props):
        if _canonical(old_props[param]) != _canonical(new_props[param]):
            changes.append(
                f"{where}: parameter {param!r} changed from {_short(old_props[param])} "
                f"to {_short(new_props[param])}"
            )
    kept_old = [p for p in old_props if p in new_props]
    kept_new = [p for p in new_props if p in old_props]
    if kept_old != kept_new:
        changes.append(f"{where}: parameter order changed from {kept_old} to {kept_new}")
    old_required, new_required = set(old.get("required") or ()), set(new.get("required") or ())
    for param in sorted((new_required - old_required) & set(old_props)):
        changes.append(f"{where}: parameter {param!r} is now required")
    for param in sorted((old_required - new_required) & set(new_props)):
        changes.append(f"{where}: parameter {param!r} is no longer required")
    return changes


def _input_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = _parameter_changes(name, old, new)
    rest_old = {k: v for k, v in old.items() if k not in ("properties", "required")}
    rest_new = {k: v for k, v in new.items() if k not in ("properties", "required")}
    if _canonical(rest_old) != _canonical(rest_new):
        changes.append(f"endpoint {name!r}: input changed from {_short(old)} to {_short(new)}")
    return changes


def _route_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = []
    for key in ("route", "is_task"):
        if old.get(key) != new.get(key):
            changes.append(
                f"endpoint {name!r}: {key} changed from {old.get(key)!r} to {new.get(key)!r}"
            )
    changes += _input_changes(name, _mapping(old.get("input")), _mapping(new.get("input")))
    old_output, new_output = _mapping(old.get("output")), _mapping(new.get("output"))
    if _canonical(old_output) != _canonical(new_output):
        changes.append(
            f"endpoint {name!r}: output changed from {_short(old_output)} to {_short(new_output)}"
        )
    return changes


def schema_changes(expected: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """How ``live`` differs from ``expected``, one line per change; empty when they match.

    Args:
        expected: The ``/schema.json`` a client was generated from.
        live: The service's ``/schema.json`` now.
    """
    changes = []
    if expected.get("name") != live.get("name"):
        changes.append(
            f"service name changed from {expected.get('name')!r} to {live.get('name')!r}"
        )
    old, new = _routes(expected), _routes(live)
    changes += [f"endpoint {n!r} was removed" for n in sorted(old.keys() - new.keys())]
    changes += [f"endpoint {n!r} was added" for n in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() & new.keys()):
        changes += _route_changes(name, old[name], new[name])
    return changes


def check_schema(expected: Mapping[str, Any], live: Any, where: str) -> None:
    """Raise :class:`SchemaMismatch` unless ``live`` matches ``expected``.

    Args:
        expected: The schema a generated client embeds.
        live: The document the service at ``where`` serves now.
        where: The service's URL (credentials already masked), for the message.
    """
    changes = schema_changes(expected, _mapping(live))
    if not isinstance(live, Mapping):
        changes = [f"the service's /schema.json is not an object: {_short(live)}"]
    if changes:
        listed = "\n".join(f"  - {change}" for change in changes)
        raise SchemaMismatch(
            f"the service at {where} no longer matches the schema this client was generated "
            f"from; regenerate it (asyncbento generate):\n{listed}",
            changes=changes,
        )
