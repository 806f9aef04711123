"""Logs for people or for machines, with secrets redacted from both.

Two formats of the same records. JSON lines, for a log collector: each line
has ``ts``, ``level``, ``logger``, ``msg``, then whatever the call passed in
``extra=``, then ``exc`` for a traceback. Human lines, for a terminal: local
time, level, message, then the extras as ``key=value``. ``auto`` picks human
when the stream is a terminal.

Browsers cannot set headers on a WebSocket, so tokens travel in query
strings, and uvicorn logs the path of every WebSocket it accepts: a
record's fields and message arguments are redacted by name
(``server/redaction.py``) before either format writes them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from server.redaction import redact_field, redact_text, redact_value

# Attributes every LogRecord has; anything else on a record came from extra=.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    # uvicorn repeats its message with ANSI colours for its own formatter.
    "color_message",
}
# A value that must be quoted to stay one token of a human line.
_NEEDS_QUOTES = re.compile(r"[\s\"'=]|^$")

# The lines uvicorn (and websockets, through uvicorn's logger) writes for each
# connection, told apart by their format strings: the access log of sockets.
_CONNECTION_LOGGERS = frozenset({"uvicorn.error"})
_CONNECTION_MESSAGES = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        '%s - "WebSocket %s" 403',
        '%s - "WebSocket %s" %d',
        "connection open",
        "connection closed",
        "connection rejected (%d %s)",
        "HTTP response sent (%d %s)",
    }
)


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the call passed in ``extra=``, its secrets redacted by name."""
    return {
        name: redact_field(name, value)
        for name, value in vars(record).items()
        if name not in _RECORD_ATTRIBUTES
    }


def _message(record: logging.LogRecord) -> str:
    """The record's message, its arguments redacted before they are put in.

    A secret is redacted where it is still a value of its own (uvicorn's
    path argument, say); the whole message is then looked over once more
    for one written straight into the text.
    """
    args = record.args
    if not args:
        return redact_text(str(record.msg))
    if isinstance(args, Mapping):
        clean: Any = {key: redact_field(str(key), value) for key, value in args.items()}
    else:
        clean = tuple(redact_value(value) for value in args)
    try:
        return redact_text(str(record.msg) % clean)
    except (TypeError, ValueError):
        return redact_text(record.getMessage())


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return redact_text(formatter.formatException(record.exc_info))
    return redact_text(record.exc_text) if record.exc_text else None


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
        }
        for name, value in _extras(record).items():
            line.setdefault(name, value)
        traceback = _traceback(self, record)
        if traceback is not None:
            line["exc"] = traceback
        return json.dumps(line, default=str, ensure_ascii=False)


def _human_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text, ensure_ascii=False) if _NEEDS_QUOTES.search(text) else text


class HumanFormatter(logging.Formatter):
    """Formats a record as ``HH:MM:SS LEVEL message key=value ...``.

    Local time to the second is enough on a terminal, where the lines are
    read as they come; a traceback follows on lines of its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        parts = [moment, f"{record.levelname:<7}", _message(record)]
        parts += [f"{name}={_human_value(value)}" for name, value in _extras(record).items()]
        line = " ".join(parts)
        traceback = _traceback(self, record)
        return line if traceback is None else f"{line}\n{traceback}"


class _WithoutConnectionLines(logging.Filter):
    """Drops uvicorn's line per accepted, refused, opened or closed WebSocket."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name in _CONNECTION_LOGGERS and record.msg in _CONNECTION_MESSAGES)


class _OurHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installs, so a second call replaces it."""


def parse_level(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number


def is_human(log_format: str, stream: TextIO) -> bool:
    """Whether ``log_format`` ("auto", "human" or "json") means human lines on ``stream``."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty is not None and isatty())
    if log_format in ("human", "json"):
        return log_format == "human"
    raise ValueError(f"unknown log format {log_format!r}: use auto, human or json")


def configure_logging(
    level: str,
    *,
    log_format: str = "auto",
    access_log: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send every log record, at ``level`` and above, to stderr (or ``stream``).

    Without ``access_log``, human lines leave out each accepted WebSocket;
    JSON lines keep them, as they always have for log collectors.
    """
    out = sys.stderr if stream is None else stream
    human = is_human(log_format, out)
    root = logging.getLogger()
    root.setLevel(parse_level(level))
    # Handlers others installed (pytest's capture, say) stay.
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _OurHandler(out)
    handler.setFormatter(HumanFormatter() if human else JsonFormatter())
    if human and not access_log:
        handler.addFilter(_WithoutConnectionLines())
    root.addHandler(handler)
