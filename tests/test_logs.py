"""JSON-lines logging, and the scrubbing of query strings (tokens) from it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from server.logs import JsonFormatter, configure_logging, parse_level, redact


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
    assert line["msg"] == '127.0.0.1:5000 - "WebSocket /ws/rooms/carol?[redacted]" [accepted]'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /api/wallet?token=abc HTTP/1.1", "GET /api/wallet?[redacted] HTTP/1.1"),
        ("ws://h:1/ws/rooms/r?a=1&token=t", "ws://h:1/ws/rooms/r?[redacted]"),
        ("is the room live? yes", "is the room live? yes"),
        ("no query in /ws/rooms/carol", "no query in /ws/rooms/carol"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_formatter_serialises_odd_extras() -> None:
    record = logging.makeLogRecord({"msg": "m", "levelname": "INFO", "name": "n", "obj": object()})
    assert json.loads(JsonFormatter().format(record))["obj"].startswith("<object")


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        parse_level("LOUD")
