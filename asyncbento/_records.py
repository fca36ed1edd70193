"""A failed input's error as plain data, for the CLI's output lines and Ray Data's error column."""

from __future__ import annotations

from typing import Any

from .exceptions import BentoMLException


def error_record(error: BaseException) -> dict[str, Any]:
    """``error`` as a dict: its ``type`` name, ``error_code`` (``None`` unless it is a
    :class:`~asyncbento.exceptions.BentoMLException`), ``message``, and the server's
    ``request_id`` and ``trace_id`` (``None`` unless its answer named itself)."""
    ours = error if isinstance(error, BentoMLException) else None
    return {
        "type": type(error).__name__,
        "error_code": None if ours is None else int(ours.error_code),
        "message": str(error) if ours is None else ours.message,
        "request_id": None if ours is None else ours.request_id,
        "trace_id": None if ours is None else ours.trace_id,
    }
