"""Response: a fully read HTTP answer, as ``client.request()`` returns it.

It has the attributes code written for BentoML's clients (which return an ``httpx.Response``)
uses: ``status_code``, ``headers`` (case-insensitive), ``content``, ``text``, ``json()``,
``url``, ``is_success``, ``is_error`` and ``raise_for_status()``; plus the server's
``request_id`` and ``trace_id`` for finding the answer in its log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy
from yarl import URL

from ._codec import JSON_DECODER, REQUEST_ID_HEADER, TRACE_ID_HEADER, error_from_answer


@dataclass(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class Response:
    """A fully read HTTP answer. Error statuses are kept here, not raised.

    Attributes:
        status_code: The HTTP status, e.g. ``200``.
        reason_phrase: The status line's text, e.g. ``"OK"``.
        headers: The answer's headers; lookups ignore case.
        content: The body as bytes.
        url: The URL that answered.
        method: The request's HTTP method.
    """

    status_code: int
    reason_phrase: str
    headers: CIMultiDictProxy[str]
    content: bytes
    url: URL
    method: str

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    @property
    def encoding(self) -> str:
        """The body's character set from ``Content-Type`` (default ``utf-8``)."""
        for parameter in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip("\"'")
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded as text (undecodable bytes become U+FFFD)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not valid JSON (a ``msgspec.DecodeError``).
        """
        return JSON_DECODER.decode(self.content)

    @property
    def request_id(self) -> str | None:
        """The server's ``X-BentoML-Request-ID`` for this answer (``None`` when absent)."""
        return self.headers.get(REQUEST_ID_HEADER)

    @property
    def trace_id(self) -> str | None:
        """The server's ``X-BentoML-Trace-ID`` for this answer (``None`` when absent)."""
        return self.headers.get(TRACE_ID_HEADER)

    @property
    def is_success(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        """True for a 4xx or 5xx status."""
        return self.status_code >= 400

    def raise_for_status(self) -> Response:
        """Raise the typed error a call would raise for this status; else return the response.

        Raises:
            BentoMLException: the subclass for the status (``NotFound`` for 404, ...), with the
                server's message, ``error_code`` and ``body``.
        """
        if self.is_error:
            raise error_from_answer(
                self.status_code, self.reason_phrase, self.content, self.headers
            )
        return self
