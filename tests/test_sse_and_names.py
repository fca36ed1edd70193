"""Unit tests: the SSE parser, incremental UTF-8, and download file-name safety."""

from __future__ import annotations

import pytest

from asyncbento import exceptions as exc
from asyncbento._files import safe_filename
from asyncbento._streaming import ServerSentEvent, SSEParser, TextDecoder


def feed_all(pieces: list[str]) -> list[ServerSentEvent]:
    parser = SSEParser()
    events = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    return events + parser.close()


def test_sse_basic_multiline_comments_and_fields() -> None:
    text = (
        ": a comment\n"
        "data: first\n\n"
        "event: update\nid: 7\nretry: 1500\ndata: line one\ndata: line two\n\n"
        "data:no-space\r\n\r\n"
    )
    events = feed_all([text])
    assert events == [
        ServerSentEvent(data="first"),
        ServerSentEvent(data="line one\nline two", event="update", id="7", retry=1500),
        ServerSentEvent(data="no-space", id="7", retry=1500),
    ]


def test_sse_split_anywhere_gives_the_same_events() -> None:
    text = "data: alpha\n\nevent: x\ndata: beta\r\n\r\ndata: gamma\rdata: delta\r\r"
    expected = feed_all([text])
    assert [e.data for e in expected] == ["alpha", "beta", "gamma\ndelta"]
    for cut in range(len(text)):
        assert feed_all([text[:cut], text[cut:]]) == expected
    assert feed_all(list(text)) == expected


def test_sse_unterminated_last_event_and_done() -> None:
    assert feed_all(["data: tail"]) == [ServerSentEvent(data="tail")]
    assert ServerSentEvent(data="[DONE]").is_done
    assert not ServerSentEvent(data="[DONE] ").is_done


def test_text_decoder_never_splits_a_character() -> None:
    data = "héllo-🙂-日本".encode()
    for cut in range(1, len(data)):
        decoder = TextDecoder()
        assert (
            decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.end() == "héllo-🙂-日本"
        )
    decoder = TextDecoder()
    assert "".join(decoder.feed(data[i : i + 1]) for i in range(len(data))) == "héllo-🙂-日本"


def test_text_decoder_errors_are_typed() -> None:
    with pytest.raises(exc.ResponseDecodeError):
        TextDecoder().feed(b"\xff")
    decoder = TextDecoder()
    decoder.feed("🙂".encode()[:2])
    with pytest.raises(exc.ResponseDecodeError):
        decoder.end()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("..\\..\\windows\\system32\\x.dll", "x.dll"),
        ("..", "download"),
        ("", "download"),
        (None, "download"),
        ("a\x00b\x1fc\nd.txt", "abcd.txt"),
        ("  .hidden  ", "hidden"),
        ("ok:name?.txt", "okname.txt"),
        ("日本語.txt", "日本語.txt"),
    ],
)
def test_safe_filename(raw: str | None, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_safe_filename_caps_length_and_keeps_suffix() -> None:
    name = safe_filename("a" * 500 + ".json")
    assert len(name.encode()) <= 200
    assert name.endswith(".json")
