"""Writing the same frame to thousands of sockets without awaiting any of them.

uvicorn's ASGI ``send`` waits until that one client's buffer drains, so a
room that awaited each viewer in turn would move at the pace of its slowest
viewer (DESIGN.md "Pitfalls"). Server-to-client frames are unmasked and we
negotiate no compression, so every viewer of a room gets byte-identical
frames: the room builds a frame once (``frame_bytes``) and hands it to each
connection's ``FrameWriter``, which writes it to the transport at once or,
while the kernel buffer is full, keeps it in a bounded backlog. A viewer whose
backlog passes the bound is dropped with close code 4001 (slow consumer).

``GiftstreamWebSocketProtocol`` is uvicorn's sans-I/O WebSocket protocol
with two changes: it hands each connection's ``FrameWriter`` to the app in
the ASGI scope (``scope["extensions"]["giftstream.writer"]``), and it keeps
reading until a few messages wait for the app rather than after each one.
Handshake, parsing, pings and closing stay uvicorn's. ``giftstream serve`` selects it
with uvicorn's ``ws`` setting.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

WRITER_EXTENSION = "giftstream.writer"
_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
_FIN = 0x80
# How long a dropped viewer gets to read its close frame before the socket is cut.
DROP_GRACE_SECONDS = 5.0
DEFAULT_LIMIT_BYTES = 1024 * 1024
# Messages a socket may have waiting for the app before the server stops
# reading it. uvicorn stops reading after every message and starts again when
# the app takes it: two epoll_ctl calls per gift, 5% of a storm's CPU. The
# bound still holds a client that sends faster than its gifts are handled.
READ_AHEAD = 8


def frame_bytes(payload: bytes | str) -> bytes:
    """One unmasked, unfragmented WebSocket frame (RFC 6455 section 5.2)."""
    if isinstance(payload, str):
        data, opcode = payload.encode(), _OPCODE_TEXT
    else:
        data, opcode = payload, _OPCODE_BINARY
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", _FIN | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", _FIN | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, 127, length)
    return header + data


class FrameWriter:
    """One connection's outgoing frames: written now, or backlogged up to a bound."""

    # One per connection, thousands per process: slots, and no backlog
    # deque (about 600 bytes) until a frame has to wait.
    __slots__ = ("_backlog", "_backlog_bytes", "_protocol", "dropped_slow", "held", "limit_bytes")

    def __init__(self, protocol: GiftstreamWebSocketProtocol, limit_bytes: int) -> None:
        self._protocol = protocol
        self.limit_bytes = limit_bytes
        self._backlog: deque[bytes] | None = None
        self._backlog_bytes = 0
        self.dropped_slow = False
        # While held, frames wait in the backlog: a new viewer's room events
        # queue up behind the welcome that is still being built.
        self.held = True

    @property
    def open(self) -> bool:
        p = self._protocol
        return p.handshake_complete and not p.close_sent and not p.transport.is_closing()

    @property
    def pending_bytes(self) -> int:
        """What the peer has yet to take beyond the kernel's socket buffer."""
        return self._backlog_bytes + self._protocol.transport.get_write_buffer_size()

    def send(self, frame: bytes) -> None:
        """Queue a frame built by ``frame_bytes``; never waits."""
        if not self.open:
            return
        protocol = self._protocol
        transport = protocol.transport
        if not self._backlog and not self.held and protocol.writable.is_set():
            # The hot path of fan-out (once per viewer per frame): one write,
            # and what the kernel did not take is the only thing pending.
            transport.write(frame)
            if transport.get_write_buffer_size() > self.limit_bytes:
                self.drop_slow_consumer()
            return
        self._waiting().append(frame)
        self._backlog_bytes += len(frame)
        # A reader that keeps up leaves nothing here: the kernel takes each
        # frame at once. The bound must exceed the largest frame (rooms.py caps it).
        if self._backlog_bytes + transport.get_write_buffer_size() > self.limit_bytes:
            self.drop_slow_consumer()

    def _waiting(self) -> deque[bytes]:
        if self._backlog is None:
            self._backlog = deque()
        return self._backlog

    def release_with(self, first: bytes) -> None:
        """Send ``first`` ahead of everything held, then stop holding."""
        self._waiting().appendleft(first)
        self._backlog_bytes += len(first)
        self.held = False
        self.flush()

    def flush(self) -> None:
        """Write the backlog while the transport takes it (called on resume_writing)."""
        transport = self._protocol.transport
        backlog = self._backlog
        while backlog and not self.held and self._protocol.writable.is_set() and self.open:
            frame = backlog.popleft()
            self._backlog_bytes -= len(frame)
            transport.write(frame)

    def drop_slow_consumer(self) -> None:
        self.dropped_slow = True
        self._backlog = None
        self._backlog_bytes = 0
        self._protocol.close_now(4001, "slow consumer: reconnect and resync")

    def close(self, code: int, reason: str) -> None:
        self._protocol.close_now(code, reason)

    def discard(self) -> None:
        self._backlog = None
        self._backlog_bytes = 0


class GiftstreamWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The app sets the real bound from its settings when it takes the writer.
        self.writer = FrameWriter(self, DEFAULT_LIMIT_BYTES)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][WRITER_EXTENSION] = self.writer

    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # so that uvicorn does not pause after this one
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queue.qsize() >= READ_AHEAD:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writer.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer.discard()
        super().connection_lost(exc)

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame behind what the kernel holds, tell the app, cut off later."""
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.close_timer = self.loop.call_later(DROP_GRACE_SECONDS, self.transport.abort)
