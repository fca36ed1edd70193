"""msgspec encoding of request values, decoding of answers, response readers, and error bodies
to exceptions.

numpy and pydantic objects are encoded by duck typing, so neither library is imported unless
the user passes such an object (or an endpoint returns a tensor).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from ._config import DEFAULT_LIMITS
from ._retry import parse_retry_after
from ._schema import OutputKind
from ._transport import read_body
from .exceptions import (
    ArgumentError,
    ArgumentValueError,
    BentoMLException,
    ResponseDecodeError,
    TaskNotCompleted,
    exception_for_status,
)

if TYPE_CHECKING:
    import aiohttp

Reader = Callable[["aiohttp.ClientResponse"], Awaitable[Any]]


def _encode_extra(obj: Any) -> Any:
    """msgspec ``enc_hook``: types msgspec does not know natively."""
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # pydantic v2 models
        return model_dump(mode="json")
    module = type(obj).__module__
    if module == "numpy" or module.startswith("numpy."):
        tolist = getattr(obj, "tolist", None)  # ndarray -> nested lists; scalar -> Python number
        if callable(tolist):
            return tolist()
    legacy_dict = getattr(obj, "dict", None)
    if callable(legacy_dict) and hasattr(obj, "__fields__"):  # pydantic v1 models
        return legacy_dict()
    raise TypeError(f"objects of type {type(obj).__qualname__} cannot be encoded as JSON")


JSON_ENCODER = msgspec.json.Encoder(enc_hook=_encode_extra)
JSON_DECODER = msgspec.json.Decoder()

_ENCODE_FAILURES = (TypeError, msgspec.EncodeError, OverflowError, ValueError, RecursionError)


def decode_json(data: bytes | str, decoder: Any = JSON_DECODER) -> Any:
    """Decode JSON with ``decoder``; JSON nested too deeply to decode raises
    ``msgspec.DecodeError`` like any other bad JSON, never a ``RecursionError``."""
    try:
        return decoder.decode(data)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply to decode") from None


def encode_json(value: Any, *, endpoint: str, argument: str | None = None) -> bytes:
    """Encode a request value as JSON.

    Raises:
        ArgumentError: a value that cannot be encoded (or is nested too deeply), naming its
            argument (a ``TypeError``).
        ArgumentValueError: a NaN or infinite float, which JSON cannot carry (msgspec would
            send ``null`` in its place), naming its argument (a ``ValueError``).
    """
    try:
        data = JSON_ENCODER.encode(value)
    except _ENCODE_FAILURES as exc:
        culprit = argument
        if culprit is None and isinstance(value, dict):
            culprit = _find_culprit(value, _fails_to_encode)
        if isinstance(exc, RecursionError):
            exc = ValueError("nested too deeply")
        raise ArgumentError(f"{where(endpoint, culprit)} cannot be sent as JSON: {exc}") from None
    # A non-finite float is encoded as null: only an answer with a null in it can hide one.
    if b"null" in data and _has_non_finite(value):
        culprit = argument
        if culprit is None and isinstance(value, dict):
            culprit = _find_culprit(value, _has_non_finite)
        raise ArgumentValueError(
            f"{where(endpoint, culprit)} contains NaN or infinity, which JSON cannot carry "
            "(it would be sent as null)"
        )
    return data


def where(endpoint: str, argument: str | None) -> str:
    """How an error message names an argument (or the whole input) of an endpoint."""
    return f"argument {argument!r} of {endpoint}()" if argument else f"the input of {endpoint}()"


def _find_culprit(values: Mapping[str, Any], test: Callable[[Any], bool]) -> str | None:
    return next((name for name, item in values.items() if test(item)), None)


def _fails_to_encode(value: Any) -> bool:
    try:
        JSON_ENCODER.encode(value)
    except _ENCODE_FAILURES:
        return True
    return False


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or infinite float is anywhere in ``value`` (walked without recursion)."""
    pending = [msgspec.to_builtins(value, enc_hook=_encode_extra)]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def encode_form_value(value: Any, *, endpoint: str, argument: str) -> str:
    """A non-file field of a multipart request: its JSON text, as BentoML's server expects."""
    return encode_json(value, endpoint=endpoint, argument=argument).decode("utf-8")


def _to_tensor(data: Any) -> Any:
    try:
        import numpy
    except ImportError:  # numpy is optional: hand back the nested lists
        return data
    return numpy.asarray(data)


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def decode_body(kind: OutputKind, body: bytes, content_type: str | None) -> Any:
    """Turn a successful answer's body into the endpoint's Python value (not files/images).

    JSON outputs are decoded as JSON whatever the Content-Type says; only when that fails and
    the answer is text (a ``str`` returned by an endpoint typed ``Any`` or ``str | None``, which
    BentoML sends raw) is the text returned instead.
    """
    if kind is OutputKind.BYTES:
        return body
    if kind is OutputKind.TEXT:
        return _decode_text(body)
    if not body and _media_type(content_type) != "application/json":
        return None
    try:
        data = decode_json(body)
    except msgspec.DecodeError as exc:
        media = _media_type(content_type)
        if kind is OutputKind.ANY or media.startswith("text/"):
            return _decode_text(body)
        raise ResponseDecodeError(
            f"the server answered {media or 'no content type'} that is not valid JSON: {exc}",
            body=_body_text(body),
        ) from exc
    return _to_tensor(data) if kind is OutputKind.TENSOR else data


async def read_as(response: aiohttp.ClientResponse, decoder: Any, what: str) -> Any:
    """A whole 2xx body decoded by a msgspec ``decoder``; a wrong shape is a decode error."""
    body = await read_body(response, DEFAULT_LIMITS.max_answer_size)
    try:
        return decode_json(body, decoder)
    except msgspec.DecodeError as exc:  # also msgspec.ValidationError: JSON of the wrong shape
        raise ResponseDecodeError(
            f"expected {what} from {response.url.path}: {exc}", body=_body_text(body)
        ) from exc


async def read_json(response: aiohttp.ClientResponse) -> Any:
    """A whole 2xx body as JSON (e.g. ``/schema.json``)."""
    return await read_as(response, JSON_DECODER, "JSON")


async def read_nothing(response: aiohttp.ClientResponse) -> None:
    """Read and drop the body, so that the connection can be reused."""
    await read_body(response, DEFAULT_LIMITS.max_answer_size)


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResponseDecodeError(
            f"the server's text answer is not UTF-8: {exc}", body=_body_text(body)
        ) from exc


_MAX_MESSAGE = 2000
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def error_message(body: bytes, content_type: str | None, status: int, reason: str) -> str:
    """The server's error text, from any of the body formats BentoML (or a proxy) sends."""
    text = _body_text(body).strip()
    media = _media_type(content_type)
    data: Any = None
    if text[:1] in ("{", "["):
        try:
            data = decode_json(body)
        except msgspec.DecodeError:
            data = None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        data = data[0]  # BentoMLException 4xx bodies are a one-element array
    if isinstance(data, Mapping):
        message = data.get("error") or data.get("message") or data.get("detail")
        detail = data.get("detail") if message is not data.get("detail") else None
        if message is not None:
            message = message if isinstance(message, str) else _detail_text(message)
            if detail:
                message = f"{message}: {_detail_text(detail)}"
            return message[:_MAX_MESSAGE]
    if media == "text/html" or text.lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        words = title.group(1) if title else _TAG.sub(" ", text)
        text = _SPACE.sub(" ", html.unescape(words)).strip()
    if not text:
        text = f"HTTP {status} {reason}".strip()
    return text[:_MAX_MESSAGE]


REQUEST_ID_HEADER = "X-BentoML-Request-ID"
TRACE_ID_HEADER = "X-BentoML-Trace-ID"


def named_by_answer(error: BentoMLException, headers: Mapping[str, str]) -> BentoMLException:
    """``error`` carrying the ids of the (successful) answer it was raised while reading.

    A 2xx answer that cannot be decoded, or whose body breaks off, is still the server's
    answer: its ids let the user find it in the server's log.
    """
    if error.request_id is not None or error.trace_id is not None:
        return error
    request_id, trace_id = headers.get(REQUEST_ID_HEADER), headers.get(TRACE_ID_HEADER)
    if request_id is None and trace_id is None:
        return error
    return error._with_answer_ids(request_id, trace_id)


def raise_named(
    error: BentoMLException, headers: Mapping[str, str], cause: BaseException | None = None
) -> NoReturn:
    """Raise ``error`` named by the answer being read (see :func:`named_by_answer`).

    Called from an ``except`` clause, so the success path of a call costs nothing.
    """
    named = named_by_answer(error, headers)
    if named is error and cause is None:
        raise error
    raise named from (cause if cause is not None else error.__cause__)


def error_from_answer(
    status: int, reason: str, body: bytes, headers: Mapping[str, str]
) -> BentoMLException:
    """The exception that stands for an HTTP error answer."""
    content_type = headers.get("Content-Type")
    message = error_message(body, content_type, status, reason)
    cls = exception_for_status(status)
    if status == 400 and "not completed yet" in message:
        cls = TaskNotCompleted
    return cls(
        message,
        error_code=status,
        body=_body_text(body),
        request_id=headers.get(REQUEST_ID_HEADER),
        trace_id=headers.get(TRACE_ID_HEADER),
        status=status,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )
