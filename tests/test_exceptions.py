"""Unit tests: the exception tree, its BentoML names and its pickling."""

from __future__ import annotations

import pickle
from http import HTTPStatus

import pytest

from asyncbento import exceptions as exc


def test_bentoml_names_and_codes() -> None:
    assert exc.InvalidArgument.error_code is HTTPStatus.BAD_REQUEST
    assert exc.NotFound.error_code is HTTPStatus.NOT_FOUND
    assert exc.UnprocessableEntity.error_code is HTTPStatus.UNPROCESSABLE_ENTITY
    assert exc.ServiceUnavailable.error_code is HTTPStatus.SERVICE_UNAVAILABLE
    assert issubclass(exc.BadInput, exc.InvalidArgument)
    assert exc.BentoMLException("m").error_code is HTTPStatus.INTERNAL_SERVER_ERROR


@pytest.mark.parametrize(
    "cls", [exc.ConnectTimeout, exc.ReadTimeout, exc.TaskTimeout, exc.TimeoutException]
)
def test_timeouts_are_builtin_timeout_errors(cls: type[exc.BentoMLException]) -> None:
    error = cls("slow")
    assert isinstance(error, TimeoutError)
    assert isinstance(error, exc.TransportError)
    assert isinstance(error, exc.BentoMLException)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (exc.ArgumentError, TypeError),
        (exc.ArgumentValueError, ValueError),
        (exc.InputFileNotFound, FileNotFoundError),
    ],
)
def test_client_side_input_errors_are_both_kinds(
    cls: type[exc.BentoMLException], builtin: type[Exception]
) -> None:
    error = cls("bad", "some/path") if cls is exc.InputFileNotFound else cls("bad")  # type: ignore[call-arg]
    assert isinstance(error, builtin)
    assert isinstance(error, exc.BadInput) and isinstance(error, exc.InvalidArgument)
    assert error.error_code is HTTPStatus.BAD_REQUEST
    assert str(error) == error.message == "bad"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls and copy.message == "bad" and copy.error_code == 400


def test_missing_file_error_looks_like_the_builtin() -> None:
    error = exc.InputFileNotFound("the input of f(): no such file: 'x.bin'", "x.bin")
    assert isinstance(error, OSError)
    assert (error.errno, error.filename) == (2, "x.bin")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errno, copy.filename, copy.message) == (2, "x.bin", error.message)


def test_transport_errors_are_bentoml_exceptions() -> None:
    for cls in (exc.ConnectError, exc.ConnectionLost, exc.TLSError):
        assert issubclass(cls, exc.TransportError)
        assert issubclass(cls, exc.BentoMLException)


def test_error_code_accepts_int_and_unknown_codes() -> None:
    assert exc.BentoMLException("m", error_code=404).error_code is HTTPStatus.NOT_FOUND
    assert exc.BentoMLException("m", error_code=599).error_code is HTTPStatus.INTERNAL_SERVER_ERROR
    assert exc.BentoMLException("m", error_code=499).error_code is HTTPStatus.BAD_REQUEST


def test_pickle_keeps_fields() -> None:
    error = exc.NotFound("gone", body='{"error": "gone"}', attempts=3)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc.NotFound
    assert (copy.message, copy.error_code, copy.body, copy.attempts) == (
        "gone",
        HTTPStatus.NOT_FOUND,
        '{"error": "gone"}',
        3,
    )
    named = exc.InternalServerError("boom", request_id="81dbff7a2ecd6553", trace_id="9d78" * 8)
    named_copy = pickle.loads(pickle.dumps(named))
    assert (named_copy.request_id, named_copy.trace_id) == ("81dbff7a2ecd6553", "9d78" * 8)
    assert str(named_copy) == f"boom (request_id=81dbff7a2ecd6553, trace_id={'9d78' * 8})"
    lost = pickle.loads(pickle.dumps(exc.ConnectionLost("x", before_response=True)))
    assert isinstance(lost, exc.ConnectionLost)
    assert lost.before_response is True


def test_pickle_keeps_every_field_of_an_answer_error() -> None:
    error = exc.TooManyRequests(
        "slow down",
        error_code=429,
        body="slow down",
        request_id="r1",
        trace_id="t1",
        status=429,
        retry_after=2.5,
        attempts=4,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc.TooManyRequests
    assert vars(copy) == vars(error)
    assert (copy.status, copy.retry_after, copy.attempts) == (429, 2.5, 4)
    missing = pickle.loads(pickle.dumps(exc.InputFileNotFound("no such file", "/x.wav")))
    assert (missing.filename, missing.errno, missing.message) == ("/x.wav", 2, "no such file")


def test_an_attempt_count_is_put_on_a_copy() -> None:
    error = exc.ServiceUnavailable("busy", status=503, retry_after=1.0)
    counted = error._with_attempts(3)
    assert (error.attempts, counted.attempts) == (1, 3)  # the original is untouched
    assert type(counted) is exc.ServiceUnavailable
    assert (counted.message, counted.status, counted.retry_after) == ("busy", 503, 1.0)


def test_exception_for_status_fallbacks() -> None:
    assert exc.exception_for_status(400) is exc.InvalidArgument
    assert exc.exception_for_status(418) is exc.BentoMLException
    assert exc.exception_for_status(507) is exc.InternalServerError


def test_readiness_timeout_is_service_unavailable_and_timeout_error() -> None:
    error = exc.ReadinessTimeout("Server is not ready after 2 seconds")
    assert isinstance(error, exc.ServiceUnavailable) and isinstance(error, TimeoutError)
    assert not isinstance(error, exc.TransportError)  # an answer came: 503, as BentoML says
    assert error.error_code is HTTPStatus.SERVICE_UNAVAILABLE
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc.ReadinessTimeout and copy.message == error.message


def test_a_failed_input_as_a_record_keeps_the_servers_ids() -> None:
    from asyncbento._records import error_record

    error = exc.InvalidArgument("x must be >= 0", request_id="81dbff7a2ecd6553", trace_id="ab" * 16)
    assert error_record(error) == {
        "type": "InvalidArgument",
        "error_code": 400,
        "message": "x must be >= 0",
        "request_id": "81dbff7a2ecd6553",
        "trace_id": "ab" * 16,
    }
    assert error_record(ValueError("bad row")) == {
        "type": "ValueError",
        "error_code": None,
        "message": "bad row",
        "request_id": None,
        "trace_id": None,
    }
