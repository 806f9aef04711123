"""What a room refuses: error frames, refused handshakes, unreachable servers."""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]

# After these codes the server may or may not have taken the coins.
OUTCOME_UNKNOWN_CODES = frozenset({"unavailable", "internal"})
# Handshake refusals worth trying again as they are (docs/protocol.md).
TEMPORARY_STATUSES = frozenset({429, 503})
# Fields every error frame has; anything else is specific to its code.
COMMON_FIELDS = frozenset({"type", "id", "code", "message", "temporary"})


class GiftstreamError(Exception):
    """A refusal from the server (an ``error`` frame), or one of the client's own:
    ``closed`` (the room was closed before the send was answered) and
    ``frame_too_large`` (the send is longer than the server reads).

    ``fields`` holds the frame's code-specific extras (``coins`` and
    ``threshold`` for ``confirm_required``, ``limit``, ``remaining``...).
    """

    def __init__(self, frame: Message, outcome_unknown: bool | None = None) -> None:
        self.frame = frame
        self.code = str(frame.get("code") or "unknown")
        text = frame.get("message")
        self.message = text if isinstance(text, str) and text else self.code
        super().__init__(self.message)
        # The same request may succeed later, unchanged.
        self.temporary = frame.get("temporary") is True
        request_id = frame.get("id")
        self.request_id = request_id if isinstance(request_id, str) else None
        # The gift may have been paid for: retry with the same id to learn.
        self.outcome_unknown = (
            self.code in OUTCOME_UNKNOWN_CODES if outcome_unknown is None else outcome_unknown
        )
        self.fields = {name: value for name, value in frame.items() if name not in COMMON_FIELDS}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class HandshakeRefused(GiftstreamError):
    """The server answered the handshake with an HTTP error instead of a socket."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        document = _json_map(body)
        code = document.get("code") or reason
        frame = {**document, "type": "error", "id": None, "code": code}
        frame.setdefault("message", "")
        frame["temporary"] = status in TEMPORARY_STATUSES
        super().__init__(frame, outcome_unknown=False)


class ConnectionFailed(GiftstreamError):
    """No socket: the server could not be reached, or never welcomed the client."""

    def __init__(self, why: str) -> None:
        frame = {"type": "error", "id": None, "code": "unreachable", "message": why}
        super().__init__(frame | {"temporary": True}, outcome_unknown=False)


def closed_error(request_id: str, written: bool) -> GiftstreamError:
    message = "the room was closed before the gift was answered"
    frame = {"type": "error", "id": request_id, "code": "closed", "message": message}
    # Once written, the server may have paid for it before the room closed.
    return GiftstreamError(frame | {"temporary": False}, outcome_unknown=written)


def too_large_error(request_id: str, limit: int) -> GiftstreamError:
    message = f"the gift frame is longer than the server reads ({limit} bytes)"
    frame = {"type": "error", "id": request_id, "code": "frame_too_large", "message": message}
    return GiftstreamError(frame | {"temporary": False, "limit": limit}, outcome_unknown=False)


def _json_map(body: bytes) -> Message:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
