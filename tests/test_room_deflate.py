"""A room's frames go compressed to viewers that agreed to permessage-deflate.

The frames are made here (``deflated_frame_bytes``) and read back by the
``websockets`` library's own decoder, and, over a real server, by a raw
socket that checks each frame's RSV1 bit and inflates it as RFC 7692 says.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any, cast

import msgpack
import pytest
from redis.asyncio import Redis
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from server.core.auth import Identity, Role
from server.core.protocol import Codec
from server.rooms.hub import Member
from server.rooms.ws_protocol import (
    DEFLATE_MIN_BYTES,
    FrameWriter,
    deflate_window,
    deflated_frame_bytes,
    frame_bytes,
)
from tests.test_fanout import publish_burst


def parse_frame(data: bytes) -> tuple[Frame, bytes]:
    """The first unmasked frame in ``data``, and what follows it."""
    first, length, start = data[0], data[1] & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, start = int.from_bytes(data[2:10], "big"), 10
    frame = Frame(
        Opcode(first & 0x0F),
        data[start : start + length],
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
    )
    return frame, data[start + length :]


def library_decoder(window_bits: int) -> PerMessageDeflate:
    """A client's side of the deflate this server agrees to."""
    return PerMessageDeflate(
        remote_no_context_takeover=True,
        local_no_context_takeover=True,
        remote_max_window_bits=window_bits,
        local_max_window_bits=window_bits,
    )


@pytest.mark.parametrize("window_bits", [9, 12, 15])
def test_a_deflated_frame_is_read_back_by_the_librarys_decoder(window_bits: int) -> None:
    events = [{"type": "gift", "seq": seq, "sender": f"v{seq % 7}"} for seq in range(300)]
    payload = msgpack.packb({"type": "events", "events": events})
    frame, rest = parse_frame(deflated_frame_bytes(payload, window_bits))
    assert rest == b""
    assert frame.rsv1
    assert frame.fin
    assert frame.opcode is Opcode.BINARY
    assert len(frame.data) < len(payload) / 4  # repeated keys compress well
    decoded = library_decoder(window_bits).decode(frame)
    assert not decoded.rsv1
    assert decoded.data == payload
    # Each message afresh: the same frame reads back again, as a second
    # viewer's (or the next message's) decoder would read it.
    assert library_decoder(window_bits).decode(frame).data == payload


def test_a_json_frame_stays_text_and_a_short_one_goes_as_it_is() -> None:
    text = json.dumps({"type": "events", "events": [{"seq": n} for n in range(200)]})
    frame, _ = parse_frame(deflated_frame_bytes(text, 15))
    assert frame.rsv1
    assert frame.opcode is Opcode.TEXT
    assert library_decoder(15).decode(frame).data == text.encode()
    short = msgpack.packb({"type": "gift", "seq": 1})
    assert len(short) < DEFLATE_MIN_BYTES
    assert deflated_frame_bytes(short, 15) == frame_bytes(short)


def test_the_window_is_the_agreed_one_only_without_context_takeover() -> None:
    assert deflate_window([]) == 0
    assert deflate_window([library_decoder(12)]) == 12
    kept = PerMessageDeflate(False, False, 15, 15)  # a stream kept per connection
    assert deflate_window([kept]) == 0


class RawViewer:
    """A room socket over a plain TCP connection: the handshake by hand, then
    each frame as it comes, so that its compression shows."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.response = b""

    @classmethod
    async def open(cls, http: str, room: str, offer: str | None) -> RawViewer:
        host, port = http.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        extension = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        writer.write(
            (
                f"GET /ws/rooms/{room} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: giftstream.v1.msgpack\r\n{extension}\r\n"
            ).encode()
        )
        viewer = cls(reader, writer)
        viewer.response = await reader.readuntil(b"\r\n\r\n")
        assert viewer.response.startswith(b"HTTP/1.1 101"), viewer.response
        return viewer

    async def next_frame(self) -> Frame:
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        data = await self.reader.readexactly(length)
        return Frame(Opcode(head[0] & 0x0F), data, fin=True, rsv1=bool(head[0] & 0x40))

    async def next_data_frame(self) -> Frame:
        """The next frame that is not a ping or a pong (the server's keepalive
        pings a socket now and then; a test this short need not answer)."""
        while True:
            frame = await asyncio.wait_for(self.next_frame(), 10)
            if frame.opcode not in (Opcode.PING, Opcode.PONG):
                return frame

    async def messages_until(self, last_seq: int) -> tuple[list[dict[str, Any]], int]:
        """Messages up to the event numbered ``last_seq``, and how many came compressed."""
        messages: list[dict[str, Any]] = []
        compressed = 0
        while not messages or messages[-1].get("seq") != last_seq:
            frame = await self.next_data_frame()
            assert frame.opcode is Opcode.BINARY, frame
            data = frame.data
            if frame.rsv1:
                compressed += 1
                data = zlib.decompressobj(-15).decompress(bytes(data) + b"\x00\x00\xff\xff")
            message = msgpack.unpackb(data)
            messages += message["events"] if message["type"] == "events" else [message]
        return messages, compressed

    def close(self) -> None:
        self.writer.close()


async def test_viewers_that_agreed_get_the_rooms_frames_compressed(
    small_buffers: Any, redis: Redis
) -> None:
    offer = "permessage-deflate; client_max_window_bits"
    agreed = await RawViewer.open(small_buffers.http, "squeezed", offer)
    plain = await RawViewer.open(small_buffers.http, "squeezed", None)
    try:
        await check_compressed_for_one_only(agreed, plain, small_buffers.key_prefix, redis)
    finally:
        agreed.close()
        plain.close()


async def check_compressed_for_one_only(
    agreed: RawViewer, plain: RawViewer, key_prefix: str, redis: Redis
) -> None:
    answer = agreed.response.decode().lower()
    assert "permessage-deflate" in answer
    assert "server_no_context_takeover" in answer
    assert "client_no_context_takeover" in answer
    assert b"permessage-deflate" not in plain.response.lower()
    # The welcome, and then a busy room's coalesced frames.
    count = 600
    await asyncio.sleep(0.3)
    await publish_burst(redis, key_prefix, "squeezed", count, size=10)
    for viewer, compressed_at_least in ((agreed, 1), (plain, 0)):
        messages, compressed = await viewer.messages_until(count)
        assert messages[0]["type"] == "welcome"
        assert [m["seq"] for m in messages if m["type"] == "gift"] == list(range(1, count + 1))
        assert compressed >= compressed_at_least
        if compressed_at_least == 0:
            assert compressed == 0


class KeptWrites:
    """Stands in for a connection's writer that agreed to deflate."""

    deflate_bits = 15

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def test_a_sockets_own_answers_are_never_compressed() -> None:
    # However long: an ack or an error carries the socket's own balance, which
    # must not be compressed beside anything (docs/security.md).
    writer = KeptWrites()
    member = Member(cast(FrameWriter, writer), Codec.MSGPACK, Identity("v", Role.VIEWER))
    assert member.kind == (Codec.MSGPACK, 15)
    long_error = {"type": "error", "code": "bad_field", "message": "x" * 4 * DEFLATE_MIN_BYTES}
    member.send_message(long_error)
    frame, rest = parse_frame(writer.sent[0])
    assert rest == b""
    assert not frame.rsv1
    assert msgpack.unpackb(frame.data) == long_error


async def test_a_client_message_that_inflates_past_the_frame_limit_closes_its_socket(
    server: Any,
) -> None:
    offer = "permessage-deflate; client_max_window_bits"
    # A megabyte of zeros in about a kilobyte: far past the 4 KB a frame may hold.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    body = body.removesuffix(b"\x00\x00\xff\xff")
    assert len(body) < 4096
    length = len(body).to_bytes(2, "big")
    viewer = await RawViewer.open(server.http, "bombed", offer)
    try:
        assert msgpack.unpackb((await viewer.next_data_frame()).data)["type"] == "welcome"
        # FIN, RSV1, binary; masked with a zero key, so the payload goes as it is.
        viewer.writer.write(bytes((0x80 | 0x40 | 0x2, 0x80 | 126)) + length + bytes(4) + body)
        frame = await viewer.next_data_frame()
        assert frame.opcode is Opcode.CLOSE, frame
        assert int.from_bytes(frame.data[:2], "big") == 1009  # message too big
    finally:
        viewer.close()
    # The process goes on: another socket is welcomed.
    other = await RawViewer.open(server.http, "bombed", offer)
    try:
        assert msgpack.unpackb((await other.next_data_frame()).data)["type"] == "welcome"
    finally:
        other.close()
