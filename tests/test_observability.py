"""Observability against the real example service, through both clients: the server's request
ids on errors, per-call headers, trace context propagation and aiohttp tracing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from asyncbento import BentoMLException, RetryPolicy
from asyncbento.exceptions import InternalServerError, InvalidArgument
from asyncbento.testing import BentoServer

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=False)


async def _server_log_line(server: BentoServer, text: str) -> str:
    """The server's log line that mentions ``text`` (its log is written as it goes)."""
    for _ in range(50):
        for line in server.log_tail(2000).splitlines():
            if text in line:
                return line
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} not in the server log")


# ----------------------------------------------------------------------------- request ids


async def test_a_server_error_names_the_request_in_the_server_log(
    client: Any, example_server: BentoServer
) -> None:
    with pytest.raises(InternalServerError) as caught:
        await client.fail(code=500)
    error = caught.value
    assert error.message == "An unexpected error has occurred, please check the server log."
    assert re.fullmatch(r"[0-9a-f]{16}", error.request_id or "")
    assert re.fullmatch(r"[0-9a-f]{32}", error.trace_id or "")
    assert str(error) == (
        f"{error.message} (request_id={error.request_id}, trace_id={error.trace_id})"
    )
    logged = await _server_log_line(example_server, f"span={error.request_id}")
    assert "Exception on /fail" in logged or "path=/fail" in logged
    assert f"trace={error.trace_id}" in logged


async def test_every_error_answer_carries_its_own_ids(client: Any) -> None:
    with pytest.raises(InvalidArgument) as first:
        await client.checked_sqrt(x=-1)
    with pytest.raises(InvalidArgument) as second:
        await client.checked_sqrt(x=-1)
    assert first.value.request_id and second.value.request_id
    assert first.value.request_id != second.value.request_id
    assert first.value.request_id in str(first.value)


async def test_a_retried_error_carries_the_last_answers_id(
    client_kind: str, example_url: str
) -> None:
    from _clients import close_client, open_client

    opened = await open_client(client_kind, example_url, retry=FAST_RETRY)
    try:
        with pytest.raises(BentoMLException) as caught:
            await opened.fail(code=503)
    finally:
        await close_client(opened)
    assert caught.value.attempts == 3
    assert re.fullmatch(r"[0-9a-f]{16}", caught.value.request_id or "")


def test_errors_without_an_answer_have_no_ids() -> None:
    error = BentoMLException("no answer")
    assert (error.request_id, error.trace_id, str(error)) == (None, None, "no answer")
