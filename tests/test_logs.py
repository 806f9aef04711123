"""Logging as JSON lines or human lines, and the scrubbing of query strings (tokens) from both."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
from collections.abc import Iterator
from typing import Any

import pytest

from server.logs import (
    HumanFormatter,
    JsonFormatter,
    configure_logging,
    is_human,
    parse_level,
)
from server.redaction import redact_text

HUMAN_LINE = re.compile(r"\d\d:\d\d:\d\d (?P<level>[A-Z]+) +(?P<rest>.*)")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, put back as it was after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_its_extras(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("giftstream.test").info("sent %d %s", 3, "roses", extra={"room": "carol"})
    [line] = lines_of(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == "giftstream.test"
    assert line["msg"] == "sent 3 roses"
    assert line["room"] == "carol"
    assert line["ts"].endswith("Z")
    assert set(line) == {"ts", "level", "logger", "msg", "room"}


def test_records_below_the_level_are_dropped(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    logging.getLogger("giftstream.test").info("quiet")
    logging.getLogger("giftstream.test").warning("loud")
    assert [line["msg"] for line in lines_of(stream)] == ["loud"]


def test_a_traceback_stays_on_one_line(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("giftstream.test").exception("failed")
    [line] = lines_of(stream)
    assert "ValueError: boom" in line["exc"]


def test_configuring_twice_keeps_one_json_handler(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    logging.getLogger("giftstream.test").info("once")
    assert first.getvalue() == ""
    assert len(lines_of(second)) == 1


def test_uvicorns_websocket_line_loses_its_token(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    # The very call uvicorn makes when it accepts a WebSocket.
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5000",
        "/ws/rooms/carol?token=SECRET.TOKEN",
        extra={"url": "http://x/y?token=SECRET.TOKEN"},
    )
    text = stream.getvalue()
    assert "SECRET" not in text
    [line] = lines_of(stream)
    assert line["msg"] == '127.0.0.1:5000 - "WebSocket /ws/rooms/carol?token=[redacted]" [accepted]'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /api/wallet?token=abc HTTP/1.1", "GET /api/wallet?token=[redacted] HTTP/1.1"),
        ("ws://h:1/ws/rooms/r?a=1&token=t", "ws://h:1/ws/rooms/r?a=1&token=[redacted]"),
        ("is the room live? yes", "is the room live? yes"),
        ("no query in /ws/rooms/carol", "no query in /ws/rooms/carol"),
        # Where the old cut stopped: quotes, fragments, no path before the query.
        ("'/ws/r?token=SECRET'", "'/ws/r?token=[redacted]'"),
        ('"/ws/r?x=\'&token=SECRET"', '"/ws/r?x=\'&token=[redacted]"'),
        ('token="SECRET" room=carol', 'token="[redacted]" room=carol'),
        ("/ws/r#frag?token=SECRET", "/ws/r#frag?token=[redacted]"),
        ("?token=SECRET", "?token=[redacted]"),
        ("overlay.html?room=carol&key=SECRET", "overlay.html?room=carol&key=[redacted]"),
        ('{"token": "SECRET", "room": "carol"}', '{"token": "[redacted]", "room": "carol"}'),
        ('{"access_token":"SE\\"CRET"}', '{"access_token":"[redacted]"}'),
        ("authorization: Bearer SECRET.TOKEN", "authorization: Bearer [redacted]"),
        ("X-Signature=t=1,v1=SECRET", "X-Signature=[redacted]"),
        ("access_tokens=SECRET&password2=SECRET", "access_tokens=[redacted]&password2=[redacted]"),
        # Not secrets: a request's gift key, a word that merely ends in "key".
        ("monkey=1&gift_key=alice:r1", "monkey=1&gift_key=alice:r1"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_fields_named_like_secrets_are_redacted_whole_and_maps_are_walked(
    root_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("giftstream.test").info(
        "callback for %(order)s",
        {"order": "o1", "signature": "SECRET"},
        extra={
            "password": "SECRET",
            "headers": {"Cookie": "SECRET", "accept": "json"},
            "urls": ["/a?token=SECRET", "/b?since=4"],
        },
    )
    text = stream.getvalue()
    assert "SECRET" not in text
    [line] = lines_of(stream)
    assert line["password"] == "[redacted]"
    assert line["headers"] == {"Cookie": "[redacted]", "accept": "json"}
    assert line["urls"] == ["/a?token=[redacted]", "/b?since=4"]
    assert line["msg"] == "callback for o1"


def test_formatter_serialises_odd_extras() -> None:
    record = logging.makeLogRecord({"msg": "m", "levelname": "INFO", "name": "n", "obj": object()})
    assert json.loads(JsonFormatter().format(record))["obj"].startswith("<object")


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        parse_level("LOUD")


# ---------------------------------------------------------------- human lines


def uvicorn_accepts_a_websocket() -> None:
    """The very call uvicorn makes when it accepts a WebSocket."""
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5000",
        "/ws/rooms/carol?token=SECRET.TOKEN",
        extra={"url": "http://x/y?token=SECRET.TOKEN"},
    )


def test_a_human_line_has_time_level_message_and_extras(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="human", stream=stream)
    logging.getLogger("giftstream.test").warning(
        "sent %d %s", 3, "roses", extra={"room": "carol", "count": 3, "note": "two words"}
    )
    [line] = stream.getvalue().splitlines()
    found = HUMAN_LINE.fullmatch(line)
    assert found is not None, line
    assert found["level"] == "WARNING"
    assert found["rest"] == 'sent 3 roses room=carol count=3 note="two words"'


def test_human_lines_lose_tokens_too(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="human", access_log=True, stream=stream)
    uvicorn_accepts_a_websocket()
    logging.getLogger("giftstream.test").info("nested", extra={"seen": ["/a?token=SECRET.TOKEN"]})
    text = stream.getvalue()
    assert "SECRET" not in text
    assert '"WebSocket /ws/rooms/carol?token=[redacted]" [accepted]' in text
    assert 'url="http://x/y?token=[redacted]"' in text


def test_a_human_traceback_follows_its_line_scrubbed(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="human", stream=stream)
    try:
        raise ValueError("bad path /ws/rooms/carol?token=SECRET.TOKEN")
    except ValueError:
        logging.getLogger("giftstream.test").exception("failed")
    first, *rest = stream.getvalue().splitlines()
    assert HUMAN_LINE.fullmatch(first) is not None
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad path /ws/rooms/carol?token=[redacted]"
    assert "SECRET" not in stream.getvalue()


def test_human_formatter_quotes_what_would_break_a_line() -> None:
    record = logging.makeLogRecord(
        {"msg": "m", "levelname": "INFO", "name": "n", "empty": "", "eq": "a=b", "none": None}
    )
    assert HumanFormatter().format(record).endswith(' m empty="" eq="a=b" none=null')


# ---------------------------------------------------------------- which format


class TerminalLike(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_json_off_a_terminal(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="auto", stream=stream)
    logging.getLogger("giftstream.test").info("hello")
    assert lines_of(stream)[0]["msg"] == "hello"


def test_auto_is_human_on_a_terminal(root_logger: logging.Logger) -> None:
    stream = TerminalLike()
    configure_logging("INFO", log_format="auto", stream=stream)
    logging.getLogger("giftstream.test").info("hello")
    found = HUMAN_LINE.fullmatch(stream.getvalue().strip())
    assert found is not None
    assert found["rest"] == "hello"


def test_a_real_terminal_counts_as_one() -> None:
    main, side = pty.openpty()
    try:
        with open(side, "w", closefd=False) as terminal:
            assert is_human("auto", terminal)
            assert not is_human("json", terminal)
        with io.StringIO() as pipe_like:
            assert not is_human("auto", pipe_like)
            assert is_human("human", pipe_like)
    finally:
        os.close(main)
        os.close(side)


def test_json_on_a_terminal_when_asked(root_logger: logging.Logger) -> None:
    stream = TerminalLike()
    configure_logging("INFO", log_format="json", stream=stream)
    logging.getLogger("giftstream.test").info("hello")
    assert lines_of(stream)[0]["msg"] == "hello"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="pretty"):
        is_human("pretty", io.StringIO())


# ---------------------------------------------------------------- a line per connection


def connection_lines() -> None:
    """A socket accepted and opened, one refused, then a line about the server."""
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn_accepts_a_websocket()
    uvicorn.info("connection open")
    uvicorn.info('%s - "WebSocket %s" %d', "127.0.0.1:5001", "/ws/rooms/x%20y", 404)
    uvicorn.info("connection rejected (%d %s)", 404, "Not Found")
    uvicorn.info("Application startup complete.")


def test_human_logs_leave_out_a_line_per_websocket(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="human", stream=stream)
    connection_lines()
    [line] = stream.getvalue().splitlines()
    assert line.endswith("Application startup complete.")


def test_access_log_puts_them_back(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="human", access_log=True, stream=stream)
    connection_lines()
    assert len(stream.getvalue().splitlines()) == 5


def test_json_logs_keep_them(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", log_format="json", stream=stream)
    connection_lines()
    assert [line["msg"] for line in lines_of(stream)][1:] == [
        "connection open",
        '127.0.0.1:5001 - "WebSocket /ws/rooms/x%20y" 404',
        "connection rejected (404 Not Found)",
        "Application startup complete.",
    ]
