"""A failed input's error as plain data, for the CLI's output lines and Ray Data's error column."""

from __future__ import annotations

from typing import Any

from .exceptions import BentoMLException


def error_record(error: BaseException) -> dict[str, Any]:
    """``error`` as a dict: its ``type`` name, ``error_code`` (``None`` unless it is a
    :class:`~asyncbento.exceptions.BentoMLException`), ``message``, and the server's
    ``request_id`` and ``trace_id`` (``None`` unless its answer named itself)."""
    if not isinstance(error, BentoMLException):
        return {
            "type": type(error).__name__,
            "error_code": None,
            "message": str(error),
            "request_id": None,
            "trace_id": None,
        }
    return {
        "type": type(error).__name__,
        "error_code": int(error.error_code),
        "message": error.message,
        "request_id": error.request_id,
        "trace_id": error.trace_id,
    }
