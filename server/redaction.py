"""Secrets kept out of logs: redacted by what a value is called, not by where it stands.

Browsers cannot set headers on a WebSocket, so tokens travel in query
strings, and uvicorn logs the path of every socket it accepts. A regex that
cut "the query after a path" stopped at a quote, a ``#`` or a path it did
not recognise, and let the token through. Here a value is redacted when its
name says it is a secret, wherever the name appears:

- a field of a log record (``extra=``), or a key of a map inside one;
- a parameter of a query string or a form (``token=...``, up to ``&`` or
  white space, whatever quotes or fragments surround it);
- a JSON member (``"token": "..."``);
- an ``Authorization`` value (``Bearer ...``).

Leaf module: it imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
# What a secret is called: access tokens, overlay keys, signatures, passwords.
_WORDS = r"token|secret|passw|signature|authorization|cookie|api[_-]?key"
_SECRET = rf"[A-Za-z0-9_.-]*(?:{_WORDS})[A-Za-z0-9_.-]*|key"
_SECRET_NAME = re.compile(rf"(?i)(?:{_SECRET})")
# The value runs to the next parameter or white space; a quote around it stays.
_PARAMETER = re.compile(rf"(?i)(?<![A-Za-z0-9_.-])(?P<name>{_SECRET})=(?P<quote>[\"']?)[^&\s\"']*")
_JSON_MEMBER = re.compile(rf'(?i)(?P<name>"(?:{_SECRET})"\s*:\s*)"(?:[^"\\]|\\.)*"')
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def secret_name(name: str) -> bool:
    """Whether a field, key or parameter called ``name`` holds a secret."""
    return _SECRET_NAME.fullmatch(name) is not None


def redact_text(text: str) -> str:
    """``text`` with the value of every secret-named parameter or member replaced."""
    text = _PARAMETER.sub(lambda m: f"{m['name']}={m['quote']}{REDACTED}", text)
    text = _JSON_MEMBER.sub(lambda m: f'{m["name"]}"{REDACTED}"', text)
    return _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


def redact_value(value: Any) -> Any:
    """A copy of a log field's value with its secrets replaced, maps and lists walked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and secret_name(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_field(name: str, value: Any) -> Any:
    """A record's field: all of it when its name says secret, else its secrets."""
    return REDACTED if secret_name(name) else redact_value(value)
