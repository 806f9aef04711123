"""A Python client of the room protocol (docs/protocol.md): one room socket
that stays connected, resumes after drops and sends gifts that are safe to
retry.

    async with connect("http://127.0.0.1:8000", "carol", token=token) as room:
        room.on("gift", print)
        ack = await room.send_gift("rose", 5)

It imports nothing of the server above ``server.core``.
"""

from server.client.backoff import Backoff
from server.client.errors import ConnectionFailed, GiftstreamError, HandshakeRefused
from server.client.room import (
    ANY_MESSAGE,
    ConnectionState,
    GiftstreamRoom,
    Position,
    StateDetail,
    WelcomeInfo,
    connect,
)

__all__ = [
    "ANY_MESSAGE",
    "Backoff",
    "ConnectionFailed",
    "ConnectionState",
    "GiftstreamError",
    "GiftstreamRoom",
    "HandshakeRefused",
    "Position",
    "StateDetail",
    "WelcomeInfo",
    "connect",
]
