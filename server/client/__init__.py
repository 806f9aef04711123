"""A Python client of the room protocol (docs/protocol.md): one room socket
that stays connected, resumes after drops and sends gifts that are safe to
retry.

    async with connect("http://127.0.0.1:8000", "carol", token=token) as room:
        room.on("gift", print)
        ack = await room.send_gift("rose", 5)

It imports nothing of the server above ``server.core``. Modules:

- ``frames``: the two encodings, the gift request, request ids, the room URL;
- ``connection``: opening one room socket, and the messages of a frame;
- ``errors``: refusals as ``GiftstreamError``;
- ``room``: ``GiftstreamRoom``, the socket kept connected and resumed;
- ``sends``: gifts waiting for their answer, retried safely;
- ``listeners``: handlers and message streams;
- ``backoff``: the waits between reconnects.

The load tool and the tests' ``RoomClient`` open and read their sockets
through ``connection`` and ``frames`` too, and add only what they measure.
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
