"""Opening one room socket, and reading the messages out of its frames.

Everything in Python that opens a room socket comes through here (the room
client, the load tool, the tests), so the URL, the subprotocol and what a
refused handshake means are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from server.client.errors import ConnectionFailed, HandshakeRefused
from server.client.frames import Message, room_url


async def open_room_socket(
    server: str,
    room: str,
    query: Mapping[str, str],
    subprotocol: str,
    **options: Any,
) -> ClientConnection:
    """A socket on ``room`` of ``server`` (http, https, ws or wss), speaking
    ``subprotocol``; ``options`` go to ``websockets``' ``connect``. Raises
    ``HandshakeRefused`` when the server answers with an HTTP error (its
    problem document's ``code`` becomes the error's), ``ConnectionFailed``
    when there is no answer."""
    url = room_url(server, room, dict(query))
    try:
        return await open_websocket(url, subprotocols=[Subprotocol(subprotocol)], **options)
    except InvalidStatus as exc:
        response = exc.response
        raise HandshakeRefused(
            response.status_code, response.reason_phrase, bytes(response.body or b"")
        ) from None
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise ConnectionFailed(str(exc) or type(exc).__name__) from None


def messages_of(frame: Message) -> list[Message]:
    """The messages a frame carries, in order: an ``events`` frame's elements,
    or the frame itself. Elements that are not maps are dropped."""
    if frame.get("type") != "events":
        return [frame]
    events = frame.get("events")
    if not isinstance(events, list):
        return []
    return [event for event in events if isinstance(event, dict)]
