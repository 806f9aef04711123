"""uvicorn's h11 HTTP protocol with a deadline for each request, and a head limit.

uvicorn (0.54, with h11 or httptools alike) arms no timer on a connection
until it has answered a first request: its ``timeout_keep_alive`` starts only
after a response. A client that connects and sends nothing, or half a
request, or one byte now and then, holds a socket, a file descriptor and a
protocol object for as long as it likes, and thousands of them cost the
process its memory and its file descriptors. Here each request, head and
body (the head carries a room socket's whole WebSocket handshake), must be
complete within ``head_timeout`` seconds of the connection being accepted,
or of the first byte of a later request on a kept-alive connection;
otherwise the connection is closed without an answer. Bytes trickled in do
not extend the deadline. Once the request has arrived, the deadline is off:
responses and WebSocket sessions keep their own limits (uvicorn's keep-alive
timeout, WebSocket pings). A head over ``MAX_HEAD_BYTES`` is answered 431.

Each connection also takes a place in its client address's count
(server/ops/connection_caps.py) as it is accepted; over the cap it is
answered 429 and closed before anything is read. On a WebSocket upgrade the
place passes to the WebSocket protocol, which gives it back when the room
socket ends.

``giftstream serve`` passes ``configured(...)`` as uvicorn's ``http``
protocol class.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.ops.connection_caps import ConnectionCaps, Lease, refusal
from server.ops.socket_faults import OncePerSecond, SocketFaults
from server.rooms.ws_protocol import GiftstreamWebSocketProtocol
from server.tuning.transports import break_transport_cycle

logger = logging.getLogger(__name__)
# A flood of slow clients is one line a second, with how many, not one each.
_cut_off = OncePerSecond(logger, "requests not complete in time: connections closed")

# The largest request head (request line and headers) the server reads. h11
# bounds only a head still incomplete in its buffer, so a larger head that
# arrives in one piece would pass it; here every head is counted as it comes.
MAX_HEAD_BYTES = 16 * 1024
_END_OF_HEAD = b"\r\n\r\n"
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


class HeadDeadlineProtocol(H11Protocol):
    """Closes a connection whose request head is not complete in time."""

    # Overridden per server by ``configured``.
    head_timeout: float = 10.0
    connection_caps: ConnectionCaps | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._upgraded = False
        # Bytes of the current request head so far, and the last three of
        # them, where an end-of-head marker split across reads may begin.
        self._head_seen = 0
        self._head_tail = b""
        self._lease: Lease | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        caps = self.connection_caps
        if caps is not None:
            self._lease = caps.take(self.client[0] if self.client else None)
            if self._lease is None:
                transport.write(refusal(caps.limit))
                transport.close()
                return
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        if self._head_open() and not self._head_fits(data):
            self._refuse_large_head()
            return
        super().data_received(data)
        self._watch_head()

    def _head_open(self) -> bool:
        """Whether bytes now are (the start of) a request head."""
        return not self._upgraded and self.conn.their_state is h11.IDLE

    def _request_open(self) -> bool:
        """Whether a request is still arriving: its head, or then its body."""
        return not self._upgraded and self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def _head_fits(self, data: bytes) -> bool:
        """Counts ``data`` into the head; False once the head passes the limit."""
        joined = self._head_tail + data
        end = joined.find(_END_OF_HEAD)
        if end < 0:
            self._head_seen += len(data)
            self._head_tail = joined[-3:]
            return self._head_seen <= MAX_HEAD_BYTES
        head = self._head_seen + end + len(_END_OF_HEAD) - len(self._head_tail)
        self._head_seen, self._head_tail = 0, b""
        return head <= MAX_HEAD_BYTES

    def _refuse_large_head(self) -> None:
        # h11 sends no response to a request it has not parsed: written by hand.
        self._stop_head_timer()
        message = f"request head over {MAX_HEAD_BYTES} bytes".encode()
        self.transport.write(_HEAD_TOO_LARGE % (len(message), message))
        self.transport.close()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol owns the transport from here on.
        self._upgraded = True
        self._stop_head_timer()
        super().handle_websocket_upgrade(event)
        # The connection's place in its address's count goes with it.
        websocket = self.transport.get_protocol()
        if isinstance(websocket, GiftstreamWebSocketProtocol):
            websocket.address_lease, self._lease = self._lease, None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        transport = self.transport
        super().connection_lost(exc)
        break_transport_cycle(transport)

    def _watch_head(self) -> None:
        # h11 is IDLE on the client's side until a whole request head is
        # parsed, then SEND_BODY until the body is whole too.
        waiting = self._request_open() and not self.transport.is_closing()
        if waiting and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
        elif not waiting:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            SocketFaults.past_deadline += 1
            _cut_off(deadline_seconds=self.head_timeout)
            self.transport.close()


def configured(
    head_timeout: float, connection_caps: ConnectionCaps | None
) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this deadline and cap."""
    attributes = {"head_timeout": head_timeout, "connection_caps": connection_caps}
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), attributes)
