"""``client.request()``: any route of the service (``/metrics``, mounted ASGI apps, custom
routes), through the client's own session, headers, timeouts and retry policy.

Error statuses are returned in the :class:`~asyncbento.Response`, never raised. Retries follow
the client's policy with two limits, because a route's meaning is unknown here: statuses are
retried only for GET, HEAD and OPTIONS, and a request of any other method is sent again only
when the failure proves nothing was sent (the connection could not be made).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from multidict import MultiDict
from yarl import URL

from ._codec import encode_json, error_from_answer
from ._config import NOT_GIVEN, TimeoutLike, _NotGiven
from ._response import Response
from ._tracing import run_attempts
from ._validate import check_headers
from .exceptions import ArgumentError, ArgumentValueError, BentoMLException

if TYPE_CHECKING:
    from ._core import _Core, _Options
    from ._transport import Transport

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM = "application/x-www-form-urlencoded"

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


def target_url(base_url: str, url: str | URL) -> URL:
    """The absolute URL for a path relative to the service, or a same-origin absolute URL.

    Raises:
        ArgumentValueError: an absolute URL to another origin (the client's credentials must
            not go there).
    """
    text = str(url)
    if "://" not in text:
        return URL(base_url + ("" if text.startswith("/") else "/") + text)
    absolute = URL(text)
    base = URL(base_url)
    if absolute.origin() != base.origin():
        raise ArgumentValueError(
            f"request() takes a path of the service or a URL on {base.origin()}, not {text!r}"
        )
    return absolute


def _query(params: Params | None) -> MultiDict[str] | None:
    if params is None:
        return None
    pairs = params.items() if isinstance(params, Mapping) else params
    query: MultiDict[str] = MultiDict()
    for name, value in pairs:
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            query.add(str(name), _query_value(item))
    return query


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as httpx writes them
    return "" if value is None else str(value)


def request_body(json: Any, content: Any, data: Any) -> tuple[bytes | None, str | None]:
    """The bytes to send and their Content-Type, from ``json=``, ``content=`` or ``data=``.

    Raises:
        ArgumentError: more than one of them, or a value of a type that cannot be sent.
    """
    given = [
        name
        for name, value in (("json=", json), ("content=", content), ("data=", data))
        if value is not None
    ]
    if len(given) > 1:
        raise ArgumentError(
            f"request() takes one of json=, content= or data=, not {' and '.join(given)}"
        )
    if json is not None:
        return encode_json(json, endpoint="request", argument="json"), "application/json"
    if isinstance(data, Mapping):
        return urlencode(data, doseq=True).encode("ascii"), _FORM
    raw = content if content is not None else data
    if raw is None:
        return None, None
    if isinstance(raw, str):
        return raw.encode("utf-8"), None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw), None
    raise ArgumentError(
        f"request() sends str or bytes content (or a dict as data=), not {type(raw).__qualname__}"
    )


async def read_answer(
    transport: Transport, response: aiohttp.ClientResponse, method: str
) -> Response:
    """Read the whole body of ``response``, give its connection back, and wrap it."""
    try:
        content = await transport.read(response)
    finally:
        transport.finish(response)
    return Response(
        status_code=response.status,
        reason_phrase=response.reason or "",
        headers=response.headers,
        content=content,
        url=response.url,
        method=method,
    )


async def send_request(
    core: _Core,
    options: _Options,
    method: str,
    url: str | URL,
    *,
    params: Params | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: Any = None,
    data: Any = None,
    timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
) -> Response:
    """Send one request and return the whole answer (see :meth:`AsyncHTTPClient.request`)."""
    if not isinstance(method, str) or not method.isalpha():
        raise ArgumentValueError(f"not an HTTP method: {method!r}")
    method = method.upper()
    transport = core.transport
    address = target_url(transport.base_url, url)
    body, content_type = request_body(json, content, data)
    all_headers = {**(options.headers or {}), **check_headers(headers)}  # a view's, then the call's
    if content_type is not None and not any(k.lower() == "content-type" for k in all_headers):
        all_headers["Content-Type"] = content_type
    limits = options if isinstance(timeout, _NotGiven) else options.make(timeout, options.retry)
    idempotent = method in IDEMPOTENT_METHODS
    policy = options.retry
    query = _query(params)
    last: Response | None = None  # the last answer raised to be retried

    async def attempt() -> Response:
        nonlocal last
        response = await transport.start(
            method,
            address,
            timeout=limits.call_timeout,
            data=body,
            headers=all_headers,
            params=query,
        )
        answer = await read_answer(transport, response, method)
        if idempotent and policy is not None and answer.status_code in policy.retry_statuses:
            failure = error_from_answer(
                answer.status_code, answer.reason_phrase, answer.content, answer.headers
            )
            last = answer  # raised only so that the retry policy sees it
            raise failure
        return answer

    try:
        return await run_attempts(core, method, address, query, policy, idempotent, attempt)
    except BentoMLException as exc:
        # Still failing after the retries (the loop raises a copy of that answer's error): the
        # answer is returned. Only an answer's error has a status; a transport error has none.
        if last is not None and exc.status == last.status_code:
            return last
        raise
