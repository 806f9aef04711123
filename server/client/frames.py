"""Frames on the wire: the two encodings, the room URL and request ids."""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import msgpack

from server.core.protocol import REQUEST_ID, Codec

Message = dict[str, Any]
CodecName = Literal["msgpack", "json"]
SUBPROTOCOL: dict[CodecName, Codec] = {"msgpack": Codec.MSGPACK, "json": Codec.JSON}

# Request ids must be unique per sender for days (docs/protocol.md,
# idempotency): 64 random bits per process, then a counter.
_PROCESS_STEM = secrets.token_hex(8)
_issued = itertools.count(1)


def new_request_id() -> str:
    return f"gs-{_PROCESS_STEM}-{next(_issued):x}"


def is_request_id(text: str) -> bool:
    return REQUEST_ID.match(text) is not None


def gift_frame(request_id: str, gift: str, count: int = 1, confirm: bool = False) -> Message:
    """The ``gift`` request; ``confirm`` for a send worth more than the
    server's confirmation threshold (1,000 coins by default)."""
    frame: Message = {"type": "gift", "id": request_id, "gift": gift, "count": count}
    if confirm:
        frame["confirm"] = True
    return frame


def encode(message: Message, codec: CodecName) -> bytes | str:
    if codec == "json":
        return json.dumps(message, separators=(",", ":"))
    packed: bytes = msgpack.packb(message)
    return packed


def frame_bytes(data: bytes | str) -> int:
    return len(data.encode()) if isinstance(data, str) else len(data)


def decode(data: bytes | str) -> Message | None:
    """A frame's map; None for anything this version cannot read, which is
    ignored like a message of an unknown type."""
    try:
        value = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return value if isinstance(value, dict) else None


def room_url(server: str, room: str, query: dict[str, str]) -> str:
    """``server`` (http, https, ws or wss) with the room's path and ``query``."""
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not an http, https, ws or wss URL: {server!r}")
    # Quoted, so that a malformed room id gets the server's answer about it.
    path = parts.path.rstrip("/") + f"/ws/rooms/{quote(room, safe='')}"
    return f"{scheme}://{parts.netloc}{path}" + (f"?{urlencode(query)}" if query else "")
