"""Pre-built WebSocket frames: the bytes RFC 6455 asks for, read back by `websockets` itself."""

from __future__ import annotations

import struct

import pytest
from websockets.exceptions import ProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.streams import StreamReader

from server.core.protocol import Codec, Pong, decode, encode, to_wire
from server.rooms.ws_protocol import frame_bytes

FIN = 0x80
RSV = 0x70
MASK = 0x80
TEXT = 0x1
BINARY = 0x2


def parse_as_client(data: bytes) -> Frame:
    """One server-to-client frame, parsed by websockets' own frame parser."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert isinstance(frame, Frame)
    assert reader.buffer == b"", "bytes left over after the frame"
    return frame


def receive_as_client(data: bytes) -> list[Frame]:
    """Feed the bytes to a client-side sans-I/O connection; return the frames it saw."""
    connection = Protocol(Side.CLIENT, max_size=None)
    connection.receive_data(data)
    events = connection.events_received()
    assert connection.parser_exc is None
    assert connection.data_to_send() == []
    assert all(isinstance(event, Frame) for event in events)
    return [event for event in events if isinstance(event, Frame)]


# ---------------------------------------------------------------- header bytes


def test_five_byte_binary() -> None:
    payload = b"\x00\x01\x02\xfe\xff"
    frame = frame_bytes(payload)
    assert frame == bytes([FIN | BINARY, 5]) + payload
    assert len(frame) == 7


def test_text_payload() -> None:
    text = '{"type":"pong","id":"p-1","note":"héllo 🌹"}'
    data = text.encode("utf-8")
    frame = frame_bytes(text)
    assert frame[0] == FIN | TEXT
    assert frame[1] == len(data)
    assert len(data) > len(text)  # the length is in bytes, not characters
    assert frame[2:] == data


def test_200_byte_payload_uses_a_16_bit_length() -> None:
    payload = bytes(range(200))
    frame = frame_bytes(payload)
    assert frame[0] == FIN | BINARY
    assert frame[1] == 126
    assert struct.unpack("!H", frame[2:4]) == (200,)
    assert frame[4:] == payload
    assert len(frame) == 4 + 200


def test_70000_byte_payload_uses_a_64_bit_length() -> None:
    payload = bytes(i % 251 for i in range(70_000))
    frame = frame_bytes(payload)
    assert frame[0] == FIN | BINARY
    assert frame[1] == 127
    assert struct.unpack("!Q", frame[2:10]) == (70_000,)
    assert frame[10:] == payload
    assert len(frame) == 10 + 70_000


def test_70000_character_text_uses_a_64_bit_length() -> None:
    frame = frame_bytes("x" * 70_000)
    assert frame[:2] == bytes([FIN | TEXT, 127])
    assert struct.unpack("!Q", frame[2:10]) == (70_000,)


@pytest.mark.parametrize(
    ("length", "header_length", "marker"),
    [
        (0, 2, 0),
        (1, 2, 1),
        (125, 2, 125),
        (126, 4, 126),
        (127, 4, 126),
        (65_535, 4, 126),
        (65_536, 10, 127),
    ],
)
def test_length_encoding_boundaries(length: int, header_length: int, marker: int) -> None:
    frame = frame_bytes(b"\xaa" * length)
    assert frame[1] == marker
    assert len(frame) == header_length + length
    if header_length == 4:
        assert struct.unpack("!H", frame[2:4]) == (length,)
    if header_length == 10:
        assert struct.unpack("!Q", frame[2:10]) == (length,)


@pytest.mark.parametrize("payload", [b"", b"x", b"x" * 200, b"x" * 70_000, "", "t", "t" * 70_000])
def test_no_mask_no_rsv_and_fin(payload: bytes | str) -> None:
    frame = frame_bytes(payload)
    assert frame[0] & FIN
    assert frame[0] & RSV == 0
    assert frame[1] & MASK == 0


def test_empty_payloads() -> None:
    assert frame_bytes(b"") == bytes([FIN | BINARY, 0])
    assert frame_bytes("") == bytes([FIN | TEXT, 0])


def test_same_payload_same_bytes() -> None:
    wire = encode(to_wire(Pong(id="p-1")), Codec.MSGPACK)
    assert frame_bytes(wire) == frame_bytes(wire)


# ---------------------------------------------------------------- read back by websockets


@pytest.mark.parametrize(
    ("payload", "opcode"),
    [
        (b"\x01\x02\x03\x04\x05", Opcode.BINARY),
        (bytes(range(200)), Opcode.BINARY),
        (bytes(i % 251 for i in range(70_000)), Opcode.BINARY),
        (b"", Opcode.BINARY),
        ("héllo, 玫瑰 🌹", Opcode.TEXT),
        ("y" * 200, Opcode.TEXT),
        ("z" * 70_000, Opcode.TEXT),
    ],
    ids=["5-binary", "200-binary", "70000-binary", "empty", "text", "200-text", "70000-text"],
)
def test_websockets_frame_parser_reads_it(payload: bytes | str, opcode: Opcode) -> None:
    data = payload.encode() if isinstance(payload, str) else payload
    frame = parse_as_client(frame_bytes(payload))
    assert frame.opcode is opcode
    assert frame.fin is True
    assert (frame.rsv1, frame.rsv2, frame.rsv3) == (False, False, False)
    assert bytes(frame.data) == data


@pytest.mark.parametrize("payload", [b"abc", "abc", b"q" * 70_000])
def test_same_bytes_as_websockets_serialises(payload: bytes | str) -> None:
    if isinstance(payload, str):
        reference = Frame(Opcode.TEXT, payload.encode())
    else:
        reference = Frame(Opcode.BINARY, payload)
    assert frame_bytes(payload) == reference.serialize(mask=False)


def test_a_server_side_parser_refuses_it_for_lack_of_a_mask() -> None:
    # The frames are for clients only: a server expects masked frames.
    reader = StreamReader()
    reader.feed_data(frame_bytes(b"hello"))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=True)
    with pytest.raises(ProtocolError, match="mask"):
        next(parser)


def test_client_connection_receives_frames_back_to_back() -> None:
    binary = encode(to_wire(Pong(id="p-1")), Codec.MSGPACK)
    assert isinstance(binary, bytes)
    text = encode(to_wire(Pong(id="p-2")), Codec.JSON)
    big = b"\x00" * 70_000
    stream = frame_bytes(binary) + frame_bytes(text) + frame_bytes(big) + frame_bytes(b"")
    frames = receive_as_client(stream)
    assert [f.opcode for f in frames] == [Opcode.BINARY, Opcode.TEXT, Opcode.BINARY, Opcode.BINARY]
    assert decode(bytes(frames[0].data)) == {"id": "p-1", "type": "pong"}
    assert decode(bytes(frames[1].data).decode()) == {"id": "p-2", "type": "pong"}
    assert len(frames[2].data) == 70_000
    assert frames[3].data == b""


def test_client_connection_reads_a_frame_split_across_reads() -> None:
    data = frame_bytes("z" * 300)
    connection = Protocol(Side.CLIENT)
    frames: list[Frame] = []
    for start in range(0, len(data), 7):
        connection.receive_data(data[start : start + 7])
        frames.extend(e for e in connection.events_received() if isinstance(e, Frame))
    assert connection.parser_exc is None
    assert len(frames) == 1
    assert bytes(frames[0].data) == b"z" * 300
