"""Structured logs: one JSON object a line, with query strings scrubbed.

Each line has ``ts``, ``level``, ``logger``, ``msg``, then whatever the call
passed in ``extra=``, then ``exc`` for a traceback. Browsers cannot set
headers on a WebSocket, so tokens travel in query strings, and uvicorn logs
the path of every WebSocket it accepts: every query string is cut from every
line before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from extra=.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    # uvicorn repeats its message with ANSI colours for its own formatter.
    "color_message",
}
# A path followed by a query: "/ws/room?token=..." keeps "/ws/room".
_QUERY = re.compile(r"(?P<path>/[^\s?\"'#]*)\?[^\s\"'#]*")
REDACTED_QUERY = "?[redacted]"


def redact(text: str) -> str:
    """``text`` with the query string of every path in it replaced."""
    return _QUERY.sub(lambda match: match["path"] + REDACTED_QUERY, text)


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                line.setdefault(name, _clean(value))
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = redact(record.exc_text)
        return json.dumps(line, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installs, so a second call replaces it."""


def parse_level(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number


def configure_logging(level: str, *, stream: TextIO | None = None) -> None:
    """Send every log record, at ``level`` and above, to stderr as JSON lines."""
    root = logging.getLogger()
    root.setLevel(parse_level(level))
    # Handlers others installed (pytest's capture, say) stay.
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _JsonHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
