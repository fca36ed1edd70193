"""Checks of a client's options, made once in the constructor, before any request.

Wrong types raise :class:`~asyncbento.exceptions.ArgumentError` (a ``TypeError``), wrong values
:class:`~asyncbento.exceptions.ArgumentValueError` (a ``ValueError``). Messages never show a
token or a header's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .exceptions import ArgumentError, ArgumentValueError

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Characters that would end a header line early or that HTTP forbids in a value.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_seconds(name: str, value: Any, *, zero_ok: bool = False) -> float | None:
    """A duration option: ``None`` (no limit) or a finite number of seconds, above zero
    (or at least zero with ``zero_ok``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ArgumentValueError(f"{name} must be a finite number of seconds (None: no limit)")
    if value < 0 or (value == 0 and not zero_ok):
        bound = "0 or more" if zero_ok else "more than 0"
        raise ArgumentValueError(f"{name} must be {bound} seconds, got {value!r}")
    return float(value)


def check_count(name: str, value: Any, minimum: int) -> int:
    """A whole-number option of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ArgumentValueError(f"{name} must be at least {minimum}, got {value!r}")
    return value


def check_token(token: Any) -> str | None:
    """A bearer token: a ``str`` that fits in one header line."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise ArgumentError(f"token must be a str, not {type(token).__name__}")
    if _BAD_VALUE.search(token):
        raise ArgumentValueError("token contains a line break or control character")
    return token


def check_headers(headers: Any) -> dict[str, str]:
    """Extra headers: a mapping of valid header names to single-line string values."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ArgumentError(f"headers must be a mapping, not {type(headers).__name__}")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ArgumentValueError(f"not a valid header name: {name!r}")
        if not isinstance(value, str):
            raise ArgumentError(f"header {name!r} must have a str value")
        if _BAD_VALUE.search(value):
            raise ArgumentValueError(
                f"header {name!r} has a line break or control character in its value"
            )
        checked[name] = value
    return checked
