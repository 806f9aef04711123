"""Writing the same frame to thousands of sockets without awaiting any of them.

uvicorn's ASGI ``send`` waits until that one client's buffer drains, so a
room that awaited each viewer in turn would move at the pace of its slowest
viewer. Server-to-client frames are unmasked, and compression keeps no
context from one message to the next, so every viewer of a room with the
same codec and compression gets byte-identical frames: the room builds a
frame once per kind (``frame_bytes``, ``deflated_frame_bytes``) and hands it to each
connection's ``FrameWriter``, which writes it to the transport at once or,
while the kernel buffer is full, keeps it in a bounded backlog. A viewer whose
backlog passes the bound is dropped with close code 4001 (slow consumer).

A room's frames also go compressed (``deflated_frame_bytes``) to the
connections that agreed to permessage-deflate (RFC 7692), as browsers
offer it: compressed once per frame, not once per viewer, which needs no
context kept from one message to the next on either side
(``ROOM_DEFLATE``). In a gift storm a frame of 200 events is about 45 KB,
a seventh of that compressed, and the kernel's copying of it to thousands
of viewers was most of the storm's cost (docs/benchmarks.md).

``GiftstreamWebSocketProtocol`` is uvicorn's sans-I/O WebSocket protocol
with four changes: it offers ``ROOM_DEFLATE``, it hands each connection's
``FrameWriter`` to the app in the ASGI scope
(``scope["extensions"]["giftstream.writer"]``), it keeps
reading until a few messages wait for the app rather than after each one,
and its peer is pinged by the process's ``Keepalive`` (keepalive.py), a
share of all connections at a time, instead of on timers of its own.
Handshake, parsing and closing stay uvicorn's. ``giftstream serve`` selects
it with uvicorn's ``ws`` setting.
"""

from __future__ import annotations

import asyncio
import struct
import weakref
import zlib
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

from server.ops.connection_caps import Lease
from server.rooms.keepalive import Keepalive, keepalive_for
from server.rooms.slim_waits import Flag, ReceiveQueue
from server.tuning.transports import break_transport_cycle

WRITER_EXTENSION = "giftstream.writer"
_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
_FIN = 0x80
# A compressed message's first frame (RFC 7692 section 6).
_RSV1 = 0x40
# What a sync flush ends with, left off a compressed message (RFC 7692 7.2.1).
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
# Both sides start each message afresh: the server compresses a room's frame
# once for every viewer that agreed, and keeps no compressor or
# decompressor per connection (a zlib stream is tens of KB, and idle
# connections must stay small). A server may require both of these in its
# answer to any offer.
ROOM_DEFLATE = ServerPerMessageDeflateFactory(
    server_no_context_takeover=True, client_no_context_takeover=True
)
# Frames shorter than this go uncompressed (a sender's choice, message by
# message): a quiet room's lone event is a few hundred bytes, where
# compressing costs more than it saves.
DEFLATE_MIN_BYTES = 1024
# Fast: a storm's 45 KB frame in about 0.1 ms, to a seventh of its size.
DEFLATE_LEVEL = 1
# How long a dropped viewer gets to read its close frame before the socket is cut.
DROP_GRACE_SECONDS = 5.0
DEFAULT_LIMIT_BYTES = 1024 * 1024
# asyncio's own default: the transport asks its protocol to pause past this.
TRANSPORT_HIGH_WATER_BYTES = 64 * 1024
# Messages a socket may have waiting for the app before the server stops
# reading it. uvicorn stops reading after every message and starts again when
# the app takes it: two epoll_ctl calls per gift, 5% of a storm's CPU. The
# bound still holds a client that sends faster than its gifts are handled.
READ_AHEAD = 8


def frame_bytes(payload: bytes | str) -> bytes:
    """One unmasked, unfragmented WebSocket frame (RFC 6455 section 5.2)."""
    if isinstance(payload, str):
        return _frame(_FIN | _OPCODE_TEXT, payload.encode())
    return _frame(_FIN | _OPCODE_BINARY, payload)


def deflated_frame_bytes(payload: bytes | str, window_bits: int) -> bytes:
    """``frame_bytes`` of ``payload`` compressed for connections that agreed to
    ``ROOM_DEFLATE`` with this window (9 to 15 bits), or as it is when short."""
    data = payload.encode() if isinstance(payload, str) else payload
    if len(data) < DEFLATE_MIN_BYTES:
        return frame_bytes(payload)
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -window_bits)
    body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    opcode = _OPCODE_TEXT if isinstance(payload, str) else _OPCODE_BINARY
    return _frame(_FIN | _RSV1 | opcode, body.removesuffix(_SYNC_FLUSH_TAIL))


def _frame(first_byte: int, data: bytes) -> bytes:
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", first_byte, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first_byte, 126, length)
    else:
        header = struct.pack("!BBQ", first_byte, 127, length)
    return header + data


def deflate_window(extensions: Sequence[Extension]) -> int:
    """The window to compress a connection's room frames with: the one its
    handshake agreed for ``ROOM_DEFLATE``, or 0 (frames go uncompressed)."""
    for extension in extensions:
        if isinstance(extension, PerMessageDeflate) and extension.local_no_context_takeover:
            return extension.local_max_window_bits
    return 0


class FrameWriter:
    """One connection's outgoing frames: written now, or backlogged up to a bound.

    ``send`` runs once per viewer per room frame, so its usual case is one
    flag and one write. The flag, ``direct``, is kept current by the few
    things that can change it (the welcome released, the transport pausing
    or resuming, a backlog, the close handshake, the connection lost)
    instead of being worked out again on every frame.
    """

    # One per connection, thousands per process: slots, and no backlog
    # deque (about 600 bytes) until a frame has to wait.
    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_limit_bytes",
        "_lost",
        "_paused",
        "_protocol",
        "_transport",
        "deflate_bits",
        "direct",
        "dropped_slow",
        "held",
    )

    def __init__(self, protocol: GiftstreamWebSocketProtocol, limit_bytes: int) -> None:
        # Weak: the protocol holds its writer, and a cycle between them would
        # keep every closed connection alive until a full collection.
        self._protocol = weakref.ref(protocol)
        self._transport: asyncio.Transport | None = None
        self._limit_bytes = limit_bytes
        self._backlog: deque[bytes] | None = None
        self._backlog_bytes = 0
        self.dropped_slow = False
        # While held, frames wait in the backlog: a new viewer's room events
        # queue up behind the welcome that is still being built.
        self.held = True
        self._paused = False
        self._lost = False
        # A frame may go straight to the transport: open, welcomed, not
        # paused, nothing waiting ahead of it.
        self.direct = False
        # The window of the peer's agreed permessage-deflate (0: none): which
        # of a room frame's forms this connection is written.
        self.deflate_bits = 0

    @property
    def limit_bytes(self) -> int:
        return self._limit_bytes

    @limit_bytes.setter
    def limit_bytes(self, value: int) -> None:
        """The bound on what may wait for this peer (kernel buffer excluded).

        The transport asks to pause well below it, so that a write on the
        direct path never needs checking: once the transport holds a quarter
        of the bound, frames go to the backlog, whose bound is checked.
        """
        self._limit_bytes = value
        high = min(TRANSPORT_HIGH_WATER_BYTES, value // 4)
        p = self._protocol()
        if p is not None:
            p.transport.set_write_buffer_limits(high=high, low=high // 4)

    def _open_protocol(self) -> GiftstreamWebSocketProtocol | None:
        """The protocol, if frames may still be written to it."""
        p = self._protocol()
        if p is None or self._lost or not p.handshake_complete or p.close_sent:
            return None
        return None if p.transport.is_closing() else p

    def refresh(self) -> None:
        """Work out ``direct`` again: called whenever what it depends on changes."""
        p = None if self.held or self._paused or self._backlog else self._open_protocol()
        self.direct = p is not None
        if p is not None:
            self._transport = p.transport

    def send(self, frame: bytes) -> None:
        """Queue a frame built by ``frame_bytes`` (or several, one after the
        other in one bytes); never waits."""
        if self.direct:
            # The hot path of fan-out (once per viewer per frame): one write.
            # If the kernel does not take it all, the transport holds the rest
            # and pauses once it holds enough; then frames take the path below.
            transport = self._transport
            assert transport is not None
            transport.write(frame)
            return
        p = self._open_protocol()
        if p is None:
            return
        self._waiting().append(frame)
        self._backlog_bytes += len(frame)
        # A reader that keeps up leaves nothing here: the kernel takes each
        # frame at once. The bound must exceed the largest frame (server/rooms/hub.py caps it).
        pending = self._backlog_bytes + p.transport.get_write_buffer_size()
        if pending > self._limit_bytes:
            self.drop_slow_consumer()

    def _waiting(self) -> deque[bytes]:
        if self._backlog is None:
            self._backlog = deque()
        self.direct = False
        return self._backlog

    def release_with(self, first: bytes) -> None:
        """Send ``first`` ahead of everything held, then stop holding."""
        self._waiting().appendleft(first)
        self._backlog_bytes += len(first)
        self.held = False
        self.flush()
        if self._backlog is not None and not self._backlog:
            # Every welcome passes through the deque: emptied, it goes, so that
            # an idle connection does not keep its 600 bytes. (Not after every
            # flush: in a storm, paused transports would make a new one each time.)
            self._backlog = None
            self.refresh()

    def pause(self) -> None:
        """The transport holds enough: frames wait in the backlog."""
        self._paused = True
        self.direct = False

    def resume(self) -> None:
        self._paused = False
        self.flush()

    def flush(self) -> None:
        """Write the backlog while the transport takes it."""
        backlog = self._backlog
        # A write may pause the transport (``pause``), which ends the loop.
        while backlog and not self.held and not self._paused:
            p = self._open_protocol()
            if p is None:
                break
            frame = backlog.popleft()
            self._backlog_bytes -= len(frame)
            p.transport.write(frame)
        self.refresh()

    def drop_slow_consumer(self) -> None:
        self.dropped_slow = True
        self._backlog = None
        self._backlog_bytes = 0
        self.direct = False
        self.close(4001, "slow consumer: reconnect and resync")

    def close(self, code: int, reason: str) -> None:
        p = self._protocol()
        if p is not None:
            p.close_now(code, reason)

    def discard(self) -> None:
        """The connection is gone: nothing more is written."""
        self._backlog = None
        self._backlog_bytes = 0
        self._lost = True
        self.direct = False


class GiftstreamWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own offer (with ``ws_per_message_deflate``) keeps a zlib
        # stream each way per connection; this one keeps none.
        self.conn.available_extensions = [ROOM_DEFLATE]
        # The same jobs as uvicorn's asyncio.Queue and asyncio.Event in a
        # tenth of the memory (slim_waits.py); typed as theirs for uvicorn.
        self.queue = cast("asyncio.Queue[Any]", ReceiveQueue())
        writable = Flag()
        writable.set()
        self.writable = cast(asyncio.Event, writable)
        # The app sets the real bound from its settings when it takes the writer.
        self.writer = FrameWriter(self, DEFAULT_LIMIT_BYTES)
        self._keepalive: Keepalive | None = None
        # The connection's place in its client address's count, handed over
        # by the HTTP protocol on upgrade (server/api/http_protocol.py).
        self.address_lease: Lease | None = None

    # Keepalive: the process's ``Keepalive`` pings, instead of uvicorn's timers.
    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self._keepalive = keepalive_for(self.loop, self.ping_interval, self.ping_timeout)
            self._keepalive.add(self)

    def stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.discard(self)
            self._keepalive = None
        self.pending_ping_payload = None

    def ping(self, frame: bytes, payload: bytes) -> bool:
        """Write a keepalive ping, unless one is unanswered or the connection is closing."""
        if self.pending_ping_payload is not None or self.close_sent:
            return False
        if self.transport.is_closing():
            return False
        self.pending_ping_payload = payload
        # Straight to the transport, ahead of any backlog: a control frame may
        # go between two frames (RFC 6455 section 5.4).
        self.transport.write(frame)
        return True

    def handle_pong(self, event: Any) -> None:
        if self.pending_ping_payload is not None and bytes(event.data) == self.pending_ping_payload:
            self.pending_ping_payload = None

    def missed_pong(self, payload: bytes) -> None:
        if self.pending_ping_payload == payload:
            self.keepalive_timeout()  # uvicorn's: close 1011, "keepalive ping timeout"

    # uvicorn sets these two wherever the handshake completes or a close frame
    # goes out; each time, the writer's ``direct`` flag follows.
    @property
    def handshake_complete(self) -> bool:
        return self._handshake_complete

    @handshake_complete.setter
    def handshake_complete(self, value: bool) -> None:
        self._handshake_complete = value
        self._writer_state_changed()

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @close_sent.setter
    def close_sent(self, value: bool) -> None:
        self._close_sent = value
        self._writer_state_changed()

    def _writer_state_changed(self) -> None:
        writer: FrameWriter | None = getattr(self, "writer", None)
        if writer is not None:  # None while uvicorn's __init__ runs
            writer.refresh()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.writer.deflate_bits = deflate_window(self.conn.extensions)
        # The parsed request is in the scope now, and nothing reads it again;
        # but uvicorn keeps it, and so does the parser of the websockets
        # library (a local of its generator, which goes on to parse frames),
        # for the connection's life. Its headers are about 3 KB of it.
        event.headers.clear()
        del self.request
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][WRITER_EXTENSION] = self.writer

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Sent: the handshake's response (its headers) is not needed again.
            del self.response

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

    # uvicorn answers a peer's close, and closes on shutdown, without
    # ``close_sent``: nothing may be written behind that close frame.
    def handle_close(self, event: Any) -> None:
        super().handle_close(event)
        self.writer.refresh()

    def shutdown(self) -> None:
        super().shutdown()
        self.writer.refresh()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writer.pause()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writer.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer.discard()
        if self.address_lease is not None:
            self.address_lease.release()
            self.address_lease = None
        transport = self.transport
        super().connection_lost(exc)
        break_transport_cycle(transport)

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame behind what the kernel holds, tell the app, cut off later."""
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.close_timer = self.loop.call_later(DROP_GRACE_SECONDS, self.transport.abort)
