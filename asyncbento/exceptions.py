"""Exceptions raised by asyncbento.

Every error a client raises is a :class:`BentoMLException`, with the same class names as
``bentoml.exceptions`` so that code written for BentoML's own clients keeps working::

    BentoMLException                 error_code: HTTPStatus, message: str, body: str | None,
                                     request_id / trace_id: str | None (the server's answer ids)
    ├── InvalidArgument              400
    │   ├── BadInput                 400, found by the client before sending (never by status)
    │   │   ├── ArgumentError        also TypeError: a wrong or unencodable argument
    │   │   ├── ArgumentValueError   also ValueError: e.g. an empty root string
    │   │   └── InputFileNotFound    also FileNotFoundError: a file argument that does not exist
    │   └── TaskNotCompleted         400 "task ... is not completed yet"
    ├── Unauthorized                 401
    ├── Forbidden                    403
    ├── NotFound                     404
    │   └── EndpointNotFound         also AttributeError: the service has no endpoint of that name
    ├── Conflict                     409
    ├── UnprocessableEntity          422
    ├── TooManyRequests              429
    ├── InternalServerError          500 and other 5xx without a class of their own
    │   ├── BadGateway               502
    │   └── GatewayTimeout           504
    ├── ServiceUnavailable           503
    │   ├── ReadinessTimeout         also TimeoutError: the server was not ready in time
    │   └── BatchOverloaded          a batch input refused for overload longer than its budget
    ├── TaskCancelNotSupported       the server refused to cancel a task
    ├── TaskFailed                   a task ended as failed or canceled without an error body
    ├── ClientClosed                 also RuntimeError: the client was closed (before or during)
    ├── ResponseDecodeError          a 2xx answer whose body does not match the endpoint's output
    │   └── ResponseTooLarge         an answer larger than the client's Limits allow
    ├── SchemaMismatch               a generated client's service changed (``check_schema=True``)
    └── TransportError               no usable HTTP answer (error_code 503)
        ├── ConnectError             the connection could not be made (nothing was sent)
        ├── TLSError                 certificate or TLS handshake failure
        ├── ConnectionLost           the connection dropped (before or during the answer)
        └── TimeoutException         also a builtin ``TimeoutError`` (error_code 504)
            ├── ConnectTimeout       connecting took too long (nothing was sent)
            ├── ReadTimeout          the answer took too long
            └── TaskTimeout          ``task.wait()`` ran out of time

Any status without a class of its own maps to the nearest: other 4xx to ``BentoMLException``
itself (with that ``error_code``), other 5xx to ``InternalServerError``.

An error made from a server's error answer keeps the ids the server gave it
(``X-BentoML-Request-ID``, and ``X-BentoML-Trace-ID`` when the server sends it) and shows them in
``str()``, so that the failure can be found in the server's log (its lines say
``span=<request_id>``).
"""

from __future__ import annotations

import copy
import errno
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ArgumentError",
    "ArgumentValueError",
    "BadGateway",
    "BadInput",
    "BatchOverloaded",
    "BentoMLException",
    "ClientClosed",
    "ConnectError",
    "ConnectTimeout",
    "Conflict",
    "ConnectionLost",
    "EndpointNotFound",
    "Forbidden",
    "GatewayTimeout",
    "InputFileNotFound",
    "InternalServerError",
    "InvalidArgument",
    "NotFound",
    "ReadTimeout",
    "ReadinessTimeout",
    "ResponseDecodeError",
    "ResponseTooLarge",
    "SchemaMismatch",
    "ServiceUnavailable",
    "TLSError",
    "TaskCancelNotSupported",
    "TaskFailed",
    "TaskNotCompleted",
    "TaskTimeout",
    "TimeoutException",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnprocessableEntity",
    "exception_for_status",
]


class BentoMLException(Exception):
    """Root of every asyncbento error.

    Attributes:
        message: Human-readable text; for HTTP errors, the server's own error message.
        error_code: The HTTP status this error stands for.
        body: The raw response body, when the error came from an HTTP answer.
        attempts: How many attempts were made before giving up (1 without retries).
        retry_after: Seconds the server asked us to wait (``Retry-After``), if it said.
        status: The HTTP status of the answer behind this error (``None`` when there was none).
        request_id: The server's ``X-BentoML-Request-ID`` for the answer behind this error
            (``None`` when there was no answer or the header was absent).
        trace_id: The server's ``X-BentoML-Trace-ID``, when it sends one.
    """

    error_code: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        error_code: HTTPStatus | int | None = None,
        body: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = _as_status(error_code)
        self.body = body
        self.request_id = request_id
        self.trace_id = trace_id
        self.status = status
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        if self.request_id is None and self.trace_id is None:
            return self.message
        ids = (("request_id", self.request_id), ("trace_id", self.trace_id))
        return f"{self.message} ({', '.join(f'{k}={v}' for k, v in ids if v is not None)})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, error_code={int(self.error_code)})"

    def __reduce__(self) -> tuple[object, ...]:
        # Every field survives pickling (process pools, Ray workers): the instance's whole
        # __dict__ (status, retry_after, attempts, request_id, a subclass's own fields, notes).
        return (_rebuild, (type(self), self.message), dict(vars(self)))

    def _with_attempts(self, attempts: int) -> Self:
        """A copy of this error that says how many attempts were made (the retry loop's)."""
        rebuilt = copy.copy(self)  # through __reduce__: every field, the original untouched
        rebuilt.attempts = attempts
        return rebuilt

    def _with_answer_ids(self, request_id: str | None, trace_id: str | None) -> Self:
        """A copy of this error named by the answer it came from (its request and trace ids)."""
        rebuilt = copy.copy(self)
        rebuilt.request_id = request_id
        rebuilt.trace_id = trace_id
        return rebuilt


def _as_status(code: HTTPStatus | int) -> HTTPStatus:
    """Coerce a status number to HTTPStatus; numbers it does not know fall back to their class."""
    try:
        return HTTPStatus(code)
    except ValueError:
        return HTTPStatus.INTERNAL_SERVER_ERROR if code >= 500 else HTTPStatus.BAD_REQUEST


def _rebuild(cls: type[BentoMLException], message: str) -> BentoMLException:
    exc = cls.__new__(cls)
    BentoMLException.__init__(exc, message)
    return exc


class InvalidArgument(BentoMLException):
    """The server rejected the input (400)."""

    error_code = HTTPStatus.BAD_REQUEST


class BadInput(InvalidArgument):
    """Input found wrong by the client, before anything was sent (400).

    Its subclasses are also the builtin errors that BentoML's clients raise in the same cases,
    so that ``except TypeError`` and ``except BentoMLException`` both catch them.
    """


class ArgumentError(BadInput, TypeError):
    """A call's arguments do not fit the endpoint: an unknown, missing, duplicate or surplus
    argument, or a value that cannot be sent. Also a ``TypeError``."""


class ArgumentValueError(BadInput, ValueError):
    """A value of the right type that cannot be sent as it is (an empty root string, a remote
    ``file://`` URL). Also a ``ValueError``."""


class InputFileNotFound(BadInput, FileNotFoundError):
    """A file argument whose path does not exist or is not a regular file. Also a
    ``FileNotFoundError``, with ``errno`` and ``filename`` set."""

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(message)
        self.errno = errno.ENOENT
        self.strerror = message
        self.filename = filename

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.filename), dict(vars(self)))


class TaskNotCompleted(InvalidArgument):
    """``get()`` was called on a task that has not finished yet."""


class Unauthorized(BentoMLException):
    """Missing or wrong credentials (401)."""

    error_code = HTTPStatus.UNAUTHORIZED


class Forbidden(BentoMLException):
    """The credentials do not allow this call (403)."""

    error_code = HTTPStatus.FORBIDDEN


class NotFound(BentoMLException):
    """No such endpoint, route or task (404)."""

    error_code = HTTPStatus.NOT_FOUND


class EndpointNotFound(NotFound, AttributeError):
    """The service has no endpoint of that name; found by the client, nothing was sent.

    Also an ``AttributeError``, since ``client.<name>`` is one way to ask for an endpoint.
    """


class Conflict(BentoMLException):
    """The request conflicts with the server's state (409)."""

    error_code = HTTPStatus.CONFLICT


class UnprocessableEntity(BentoMLException):
    """The server could not process the input (422)."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


class TooManyRequests(BentoMLException):
    """The server is rate limiting us (429)."""

    error_code = HTTPStatus.TOO_MANY_REQUESTS


class InternalServerError(BentoMLException):
    """The service failed while handling the call (500 and other 5xx)."""

    error_code = HTTPStatus.INTERNAL_SERVER_ERROR


class BadGateway(InternalServerError):
    """A proxy in front of the service got no valid answer (502)."""

    error_code = HTTPStatus.BAD_GATEWAY


class ServiceUnavailable(BentoMLException):
    """The service is not ready or is overloaded (503)."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE


class ReadinessTimeout(ServiceUnavailable, TimeoutError):
    """The server did not become ready (``/readyz``) in the time allowed (503, as BentoML's
    clients raise). Also a builtin ``TimeoutError``."""


class BatchOverloaded(ServiceUnavailable):
    """A batch input given up on: the service refused calls for overload (429, 503, no
    connection) for longer than the batch's overload budget (``Adaptive.max_stall``). The last
    refusal is its ``__cause__``; ``batch_input`` is the input itself, to send again later."""

    def __init__(self, message: str, *, batch_input: object = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.batch_input = batch_input


class GatewayTimeout(InternalServerError):
    """A proxy in front of the service timed out (504)."""

    error_code = HTTPStatus.GATEWAY_TIMEOUT


class TaskCancelNotSupported(BentoMLException):
    """The server does not support cancelling tasks (BentoML's local server answers 400)."""

    error_code = HTTPStatus.BAD_REQUEST


class TaskFailed(BentoMLException):
    """A task ended as failed or canceled and the server kept no error of its own."""


class ClientClosed(BentoMLException, RuntimeError):
    """The client was closed: a call made after ``close()``, or one still running when it came
    (its request, answer or stream ends with this at once). Also a ``RuntimeError``."""


class ResponseDecodeError(BentoMLException):
    """A successful answer whose body could not be decoded as the endpoint's output."""

    error_code = HTTPStatus.BAD_GATEWAY


class ResponseTooLarge(ResponseDecodeError):
    """An answer larger than ``Limits.max_answer_size`` (in memory) or ``Limits.max_file_size``
    (a file), counted after decompression; it was not read further."""


class SchemaMismatch(BentoMLException):
    """The service no longer matches the schema a generated client was made from.

    Attributes:
        changes: What changed, one line each (also listed in the message).
    """

    def __init__(self, message: str, *, changes: list[str] | None = None) -> None:
        super().__init__(message)
        self.changes = list(changes or ())


class TransportError(BentoMLException):
    """No usable HTTP answer: the connection failed, dropped or timed out."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE


class ConnectError(TransportError):
    """The connection could not be made; the request was not sent."""


class TLSError(TransportError):
    """The TLS handshake failed (for example, an untrusted certificate)."""


class ConnectionLost(TransportError):
    """The connection dropped before the answer was complete.

    ``before_response`` tells whether it dropped before any byte of the answer arrived.
    """

    before_response: bool = False

    def __init__(self, message: str, *, before_response: bool = False) -> None:
        super().__init__(message)
        self.before_response = before_response


class TimeoutException(TransportError, TimeoutError):
    """An operation took longer than allowed."""

    error_code = HTTPStatus.GATEWAY_TIMEOUT


class ConnectTimeout(TimeoutException):
    """Connecting took too long; the request was not sent."""


class ReadTimeout(TimeoutException):
    """The server took too long to answer."""


class TaskTimeout(TimeoutException):
    """A task did not finish within the time given to ``wait()``/``result()``."""


_STATUS_CLASSES: dict[int, type[BentoMLException]] = {
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: UnprocessableEntity,
    429: TooManyRequests,
    500: InternalServerError,
    502: BadGateway,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def exception_for_status(status: int) -> type[BentoMLException]:
    """Return the exception class that stands for an HTTP error status."""
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    return InternalServerError if status >= 500 else BentoMLException
