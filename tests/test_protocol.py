"""The room protocol: decoding frames, reading client messages, encoding server messages.

Also the error tree, whose wire codes the protocol carries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import errors
from server.core.protocol import (
    PROTOCOL_VERSION,
    SUBPROTOCOLS,
    Ack,
    CloseCode,
    Codec,
    Combo,
    ComboEnd,
    Error,
    EventBatch,
    GiftEvent,
    Ping,
    Pong,
    SendGift,
    ServerMessage,
    Welcome,
    choose_codec,
    decode,
    encode,
    error_message,
    gift_event_wire,
    parse_client_message,
    request_id_of,
    to_wire,
)
from server.errors import (
    BadCount,
    BadField,
    BadFrame,
    GiftError,
    RateLimited,
    UnknownType,
    all_error_classes,
)

MAX = 99
PROTOCOL_DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def gift(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "gift", "id": "req-1", "gift": "rose", "count": 3}
    message.update(changes)
    return message


def gift_without(key: str) -> dict[str, Any]:
    message = gift()
    del message[key]
    return message


# ---------------------------------------------------------------- decode


def test_decode_json_text() -> None:
    assert decode('{"type":"gift","id":"r1","gift":"rose","count":5}') == {
        "type": "gift",
        "id": "r1",
        "gift": "rose",
        "count": 5,
    }


def test_decode_json_keeps_unicode_and_nesting() -> None:
    assert decode('{"type": "x", "name": "玫瑰", "nested": {"a": [1, 2]}}') == {
        "type": "x",
        "name": "玫瑰",
        "nested": {"a": [1, 2]},
    }


def test_decode_msgpack_bytes() -> None:
    frame = bytes.fromhex("84a474797065a467696674a26964a27231a467696674a4726f7365a5636f756e7405")
    assert decode(frame) == {"type": "gift", "id": "r1", "gift": "rose", "count": 5}


def test_decode_msgpack_keeps_types() -> None:
    message = {"type": "x", "name": "玫瑰", "flag": True, "n": None, "big": 2**40, "l": [1, "a"]}
    assert decode(msgpack.packb(message)) == message


def test_decoded_msgpack_frame_parses() -> None:
    message = decode(msgpack.packb(gift(count=9)))
    assert parse_client_message(message, MAX) == SendGift(id="req-1", gift="rose", count=9)


def test_msgpack_true_as_count_is_refused_after_decoding() -> None:
    message = decode(msgpack.packb(gift(count=True)))
    assert message["count"] is True
    with pytest.raises(BadCount):
        parse_client_message(message, MAX)


def test_msgpack_float_count_is_refused_after_decoding() -> None:
    message = decode(msgpack.packb(gift(count=1.0)))
    with pytest.raises(BadCount):
        parse_client_message(message, MAX)


def test_msgpack_uint64_count_is_refused_after_decoding() -> None:
    message = decode(msgpack.packb(gift(count=2**64 - 1)))
    assert message["count"] == 2**64 - 1
    with pytest.raises(BadCount):
        parse_client_message(message, MAX)


@pytest.mark.parametrize(
    "frame",
    ["", " ", "{", "}", "{'type': 'ping'}", '{"type": "ping",}', "[1,2", "\x00", "ping", "{}}"],
)
def test_malformed_json_is_a_bad_frame(frame: str) -> None:
    with pytest.raises(BadFrame):
        decode(frame)


@pytest.mark.parametrize(
    "frame", ["[]", '[{"type": "ping"}]', "5", "-1.5", '"ping"', "null", "true"]
)
def test_json_that_is_not_a_map_is_a_bad_frame(frame: str) -> None:
    with pytest.raises(BadFrame, match="map"):
        decode(frame)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_a_bad_frame(depth: int) -> None:
    with pytest.raises(BadFrame):
        decode("[" * depth)
    with pytest.raises(BadFrame):
        decode('{"a":' * depth)


def test_huge_json_integer_is_a_bad_frame() -> None:
    with pytest.raises(BadFrame):
        decode('{"type": "gift", "count": ' + "9" * 5000 + "}")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # a byte MessagePack never uses
        b"\x81",  # a map of one entry, and nothing after
        b"\x82\xa4type\xa4ping",  # a map of two entries holding one
        b"\xdf\xff\xff\xff\xff",  # a map announcing 4 billion entries
        b"\xc6\xff\xff\xff\xff",  # a bin announcing 4 GB
        b"\x81\xa4type\xa2\xff\xfe",  # a str that is not UTF-8
        b"\x81\x01\xa4ping",  # an integer key
        b"\x81\x91\x01\xa4ping",  # an array key
        b'{"type":"ping"}',  # JSON sent as a binary frame
    ],
)
def test_malformed_msgpack_is_a_bad_frame(frame: bytes) -> None:
    with pytest.raises(BadFrame):
        decode(frame)


@pytest.mark.parametrize("cut", [1, 2, 5, 10])
def test_truncated_msgpack_is_a_bad_frame(cut: int) -> None:
    packed: bytes = msgpack.packb({"type": "gift", "id": "r1", "gift": "rose", "count": 5})
    with pytest.raises(BadFrame):
        decode(packed[:-cut])


def test_msgpack_with_trailing_bytes_is_a_bad_frame() -> None:
    packed: bytes = msgpack.packb({"type": "ping", "id": "r1"})
    with pytest.raises(BadFrame):
        decode(packed + b"\x00")


@pytest.mark.parametrize("value", [[1, 2], [{"type": "ping"}], 5, -1, "ping", None, True, 1.5])
def test_msgpack_that_is_not_a_map_is_a_bad_frame(value: object) -> None:
    with pytest.raises(BadFrame):
        decode(msgpack.packb(value))


def test_msgpack_ext_type_is_a_bad_frame() -> None:
    with pytest.raises(BadFrame):
        decode(msgpack.packb(msgpack.ExtType(5, b"\x00\x01")))


def test_deeply_nested_msgpack_is_a_bad_frame() -> None:
    with pytest.raises(BadFrame):
        decode(b"\x91" * 100_000 + b"\x80")


def test_bad_frame_wire_code() -> None:
    with pytest.raises(BadFrame) as caught:
        decode("{")
    assert caught.value.code == "bad_frame"
    assert caught.value.temporary is False


# ---------------------------------------------------------------- client messages


@pytest.mark.parametrize("count", [1, 2, MAX - 1, MAX])
def test_gift_with_a_good_count(count: int) -> None:
    assert parse_client_message(gift(count=count), MAX) == SendGift(
        id="req-1", gift="rose", count=count
    )


def test_count_defaults_to_one_when_absent() -> None:
    assert parse_client_message(gift_without("count"), MAX) == SendGift(
        id="req-1", gift="rose", count=1
    )


def test_count_limit_is_the_argument() -> None:
    assert parse_client_message(gift(count=9999), 9999) == SendGift("req-1", "rose", 9999)
    with pytest.raises(BadCount):
        parse_client_message(gift(count=9999), 9998)


@pytest.mark.parametrize(
    "count",
    [
        0,
        -1,
        -(2**63),
        MAX + 1,
        2**31,
        2**53 + 1,
        2**64,
        10**100,
        1.0,
        1.5,
        float("inf"),
        float("nan"),
        True,
        False,
        "5",
        "1",
        "",
        None,
        [1],
        {"n": 1},
        b"\x01",
    ],
)
def test_bad_count(count: object) -> None:
    with pytest.raises(BadCount) as caught:
        parse_client_message(gift(count=count), MAX)
    assert caught.value.code == "bad_count"


def test_count_from_json_float_is_refused() -> None:
    with pytest.raises(BadCount):
        parse_client_message(decode('{"type":"gift","id":"r","gift":"rose","count":1.0}'), MAX)


@pytest.mark.parametrize("request_id", ["a", "x" * 64, "req-1", "a.b:c-d_E9", "0"])
def test_good_request_ids(request_id: str) -> None:
    assert parse_client_message(gift(id=request_id), MAX).id == request_id
    assert parse_client_message({"type": "ping", "id": request_id}, MAX) == Ping(id=request_id)


@pytest.mark.parametrize(
    "request_id",
    ["", "x" * 65, "a b", "a/b", "a\tb", "ü", "{r:1}", "a,b", None, 5, 1.5, True, ["a"], {"a": 1}],
)
def test_bad_request_id(request_id: object) -> None:
    with pytest.raises(BadField):
        parse_client_message(gift(id=request_id), MAX)
    with pytest.raises(BadField):
        parse_client_message({"type": "ping", "id": request_id}, MAX)


def test_missing_request_id() -> None:
    with pytest.raises(BadField):
        parse_client_message(gift_without("id"), MAX)
    with pytest.raises(BadField):
        parse_client_message({"type": "ping"}, MAX)


@pytest.mark.parametrize("gift_id", [None, 5, True, ["rose"], {"id": "rose"}, b"rose"])
def test_gift_must_be_a_string(gift_id: object) -> None:
    with pytest.raises(BadField):
        parse_client_message(gift(gift=gift_id), MAX)


def test_gift_is_required() -> None:
    with pytest.raises(BadField):
        parse_client_message(gift_without("gift"), MAX)


def test_gift_id_is_passed_on_for_the_catalogue_to_judge() -> None:
    parsed = parse_client_message(gift(gift="no_such_gift"), MAX)
    assert parsed == SendGift(id="req-1", gift="no_such_gift", count=3)


@pytest.mark.parametrize(
    "kind", ["gifts", "GIFT", "Gift", "pong", "welcome", "", None, 1, True, ["gift"], {"t": 1}]
)
def test_unknown_type(kind: object) -> None:
    with pytest.raises(UnknownType) as caught:
        parse_client_message(gift(type=kind), MAX)
    assert caught.value.code == "unknown_type"


def test_missing_type() -> None:
    with pytest.raises(UnknownType):
        parse_client_message(gift_without("type"), MAX)
    with pytest.raises(UnknownType):
        parse_client_message({}, MAX)


def test_ping() -> None:
    assert parse_client_message({"type": "ping", "id": "p-7"}, MAX) == Ping(id="p-7")


def test_ping_ignores_extra_fields() -> None:
    assert parse_client_message({"type": "ping", "id": "p", "count": -5}, MAX) == Ping(id="p")


def test_decoded_json_frame_parses() -> None:
    message = decode(json.dumps(gift(count=7)))
    assert parse_client_message(message, MAX) == SendGift(id="req-1", gift="rose", count=7)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"id": "req-1"}, "req-1"),
        ({"type": "gift", "id": "a.b:c"}, "a.b:c"),
        ({"id": "x" * 64}, "x" * 64),
        ({}, None),
        ({"id": ""}, None),
        ({"id": "x" * 65}, None),
        ({"id": "a b"}, None),
        ({"id": 5}, None),
        ({"id": None}, None),
        ({"id": ["req-1"]}, None),
    ],
)
def test_request_id_of(message: dict[str, Any], expected: str | None) -> None:
    assert request_id_of(message) == expected


# ---------------------------------------------------------------- codecs


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], Codec.MSGPACK),
        (["giftstream.v1.json"], Codec.JSON),
        (["giftstream.v1.msgpack"], Codec.MSGPACK),
        (["giftstream.v1.json", "giftstream.v1.msgpack"], Codec.JSON),
        (["giftstream.v1.msgpack", "giftstream.v1.json"], Codec.MSGPACK),
        (["chat", "giftstream.v1.json"], Codec.JSON),
        (["chat", "giftstream.v2.json"], Codec.MSGPACK),
        (["GIFTSTREAM.V1.JSON"], Codec.MSGPACK),
    ],
)
def test_choose_codec(offered: list[str], chosen: Codec) -> None:
    assert choose_codec(offered) is chosen


def test_subprotocol_names() -> None:
    assert [str(c) for c in SUBPROTOCOLS] == ["giftstream.v1.msgpack", "giftstream.v1.json"]


def sample_messages() -> list[ServerMessage]:
    return [
        Welcome(
            room="room-1",
            you={"user": "alice", "role": "viewer"},
            balance=120,
            viewers=3,
            last_seq=41,
            limits={"max_count": 9999},
        ),
        Welcome(room="r", you={}, balance=None, viewers=0, last_seq=0, limits={}),
        Ack(id="req-1", balance=90, seq=42, coins=30),
        Ack(id="req-1", balance=90, seq=42, coins=30, duplicate=True),
        Error(id="req-1", code="insufficient_coins", message="you hold 5 coins"),
        Error(id=None, code="bad_frame", message="frame could not be decoded"),
        Pong(id="p-1"),
        GiftEvent(
            room="room-1", sender="alice", gift="rose", count=3, coins=3, tier="small", ts=1, seq=42
        ),
        GiftEvent(
            room="room-1",
            sender="alice",
            gift="rose",
            count=1,
            coins=1,
            tier="small",
            ts=2,
            combo=Combo(id="abc123", count=37),
            seq=43,
        ),
        ComboEnd(
            room="room-1", sender="alice", gift="rose", combo="abc123", count=37, ts=3, seq=44
        ),
        EventBatch(events=[{"type": "gift", "seq": 45}, {"type": "combo_end", "seq": 46}]),
        EventBatch(),
    ]


EXPECTED_TYPES = {
    Welcome: "welcome",
    Ack: "ack",
    Error: "error",
    Pong: "pong",
    GiftEvent: "gift",
    ComboEnd: "combo_end",
    EventBatch: "events",
}


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_to_wire_has_the_type(message: ServerMessage) -> None:
    wire = to_wire(message)
    assert wire["type"] == EXPECTED_TYPES[type(message)]
    assert all(isinstance(key, str) for key in wire)


def test_every_server_message_kind_is_sampled() -> None:
    assert {type(m) for m in sample_messages()} == set(EXPECTED_TYPES)


def test_welcome_carries_the_protocol_version() -> None:
    wire = to_wire(sample_messages()[0])
    assert wire["protocol"] == PROTOCOL_VERSION == 1
    assert wire["balance"] == 120
    assert wire["you"] == {"user": "alice", "role": "viewer"}


def test_ack_wire_fields() -> None:
    assert to_wire(Ack(id="r", balance=7, seq=9, coins=3)) == {
        "id": "r",
        "balance": 7,
        "seq": 9,
        "coins": 3,
        "duplicate": False,
        "type": "ack",
    }


def test_gift_event_combo_is_a_nested_map() -> None:
    combo_event = sample_messages()[8]
    assert to_wire(combo_event)["combo"] == {"id": "abc123", "count": 37}
    assert to_wire(sample_messages()[7])["combo"] is None


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_encode_json_is_text_that_decodes_back(message: ServerMessage) -> None:
    wire = to_wire(message)
    frame = encode(wire, Codec.JSON)
    assert isinstance(frame, str)
    assert json.loads(frame) == wire
    assert decode(frame) == wire


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_encode_msgpack_is_bytes_that_decode_back(message: ServerMessage) -> None:
    wire = to_wire(message)
    frame = encode(wire, Codec.MSGPACK)
    assert isinstance(frame, bytes)
    assert msgpack.unpackb(frame, raw=False) == wire
    assert decode(frame) == wire


def test_encode_json_is_compact() -> None:
    assert encode({"type": "pong", "id": "p"}, Codec.JSON) == '{"type":"pong","id":"p"}'


def test_msgpack_is_smaller_than_json() -> None:
    wire = to_wire(sample_messages()[8])
    assert len(encode(wire, Codec.MSGPACK)) < len(encode(wire, Codec.JSON))


# ---------------------------------------------------------------- error frames


def test_error_message_for_a_gift_error() -> None:
    frame = error_message(BadCount("count must be from 1 to 99"), "req-9")
    assert frame == Error(id="req-9", code="bad_count", message="count must be from 1 to 99")
    assert frame.temporary is False
    assert to_wire(frame)["type"] == "error"


def test_error_message_for_a_temporary_error() -> None:
    frame = error_message(RateLimited("slow down"), None)
    assert (frame.id, frame.code, frame.temporary) == (None, "rate_limited", True)


def test_error_message_for_any_other_exception_hides_it() -> None:
    frame = error_message(RuntimeError("redis password is hunter2"), "req-1")
    assert frame.code == "internal"
    assert frame.temporary is True
    assert frame.id == "req-1"
    assert "hunter2" not in frame.message
    assert frame.message == "internal error"


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_error_message_for_every_error_class(cls: type[GiftError]) -> None:
    frame = error_message(cls("why"), "r")
    assert (frame.code, frame.message, frame.temporary) == (cls.code, "why", cls.temporary)


# ---------------------------------------------------------------- close codes


def test_close_codes() -> None:
    assert int(CloseCode.SLOW_CONSUMER) == 4001
    assert int(CloseCode.TOO_BIG) == 1009
    assert int(CloseCode.NORMAL) == 1000
    assert all(code in range(1000, 5000) for code in CloseCode)


# ---------------------------------------------------------------- the error tree

EVERY_ERROR = {
    errors.GiftError: "error",
    errors.BadRequest: "bad_request",
    errors.BadFrame: "bad_frame",
    errors.UnknownType: "unknown_type",
    errors.BadField: "bad_field",
    errors.BadCount: "bad_count",
    errors.UnknownGift: "unknown_gift",
    errors.UnknownPackage: "unknown_package",
    errors.UnknownOrder: "unknown_order",
    errors.Refused: "refused",
    errors.NotAllowed: "not_allowed",
    errors.GiftsDisabled: "gifts_disabled",
    errors.GiftingOff: "gifting_off",
    errors.NotEligible: "not_eligible",
    errors.PayoutProfileUnverified: "payout_profile_unverified",
    errors.Suspended: "suspended",
    errors.BelowMinimum: "below_minimum",
    errors.InsufficientDiamonds: "insufficient_diamonds",
    errors.DailyLimitExceeded: "daily_limit_exceeded",
    errors.UnknownWithdrawal: "unknown_withdrawal",
    errors.InsufficientCoins: "insufficient_coins",
    errors.AlreadyMember: "already_member",
    errors.FanLevelRequired: "fan_level_required",
    errors.RateLimited: "rate_limited",
    errors.AuthError: "unauthorized",
    errors.Unavailable: "unavailable",
}


def test_all_error_classes_includes_each() -> None:
    found = all_error_classes()
    assert len(found) == len(set(found))
    assert set(EVERY_ERROR) <= set(found)


def test_every_error_class_in_the_module_is_listed() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, GiftError)
    }
    assert set(all_error_classes()) == defined


def test_error_codes_are_the_documented_ones() -> None:
    assert {cls: cls.code for cls in EVERY_ERROR} == EVERY_ERROR


def test_every_error_class_has_a_unique_code() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))
    assert "internal" not in codes


def test_error_codes_are_snake_case() -> None:
    for cls in all_error_classes():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code), cls


def test_error_http_statuses() -> None:
    for cls in all_error_classes():
        assert 400 <= cls.http_status < 600, cls
    assert errors.InsufficientCoins.http_status == 402
    assert errors.RateLimited.http_status == 429
    assert errors.AuthError.http_status == 401
    assert errors.Unavailable.http_status == 503


def test_only_rate_limited_and_unavailable_are_temporary() -> None:
    temporary = {cls for cls in all_error_classes() if cls.temporary}
    assert temporary == {errors.RateLimited, errors.Unavailable}


def test_error_keeps_its_message() -> None:
    error = errors.UnknownGift("no gift 'tulip' in the catalogue")
    assert error.message == str(error) == "no gift 'tulip' in the catalogue"


def wire_codes() -> list[str]:
    return sorted({cls.code for cls in all_error_classes()} | {"internal"})


@pytest.mark.parametrize("code", wire_codes())
def test_every_wire_code_is_in_the_protocol_doc(code: str) -> None:
    assert PROTOCOL_DOC.is_file(), f"{PROTOCOL_DOC} is missing"
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    assert re.search(rf"(?<![a-z_]){re.escape(code)}(?![a-z_])", text), code


def test_a_frame_nested_past_the_bound_is_a_bad_frame() -> None:
    from server.core.protocol import MAX_FRAME_DEPTH, decode

    deep: object = 1
    for _ in range(MAX_FRAME_DEPTH - 1):  # the frame's own map is a level too
        deep = [deep]
    assert decode(msgpack.packb({"type": "ping", "x": deep}))["type"] == "ping"
    with pytest.raises(BadFrame, match="nest"):
        decode(msgpack.packb({"type": "ping", "x": [deep]}))
    with pytest.raises(BadFrame, match="nest"):
        decode(json.dumps({"type": "ping", "x": [deep]}))


def test_nesting_depth_of_flat_and_nested_documents() -> None:
    from server.core.nesting import depth

    # A flat map (every well-formed client frame) is said at once; the rest walked.
    assert depth({}) == 1
    assert depth({"type": "gift", "id": "g1", "count": 3, "confirm": True}) == 1
    assert depth({"a": [1]}) == 2
    assert depth({"a": 1, "b": {}}) == 2
    assert depth({"a": ({"b": [3]},)}) == 4
    assert depth([[[]]]) == 3
    assert depth("text") == 0


_text = st.text(max_size=12)
_maybe_text = st.none() | _text
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(
    st.tuples(_text, _text, _text, _int64, _int64, _text, _int64),
    _maybe_text,
    _maybe_text,
    st.integers(min_value=0, max_value=10),
    _maybe_text,
)
def test_a_gift_events_wire_made_directly_is_the_dataclass_s(
    head: tuple[str, str, str, int, int, str, int],
    stream_id: str | None,
    request_id: str | None,
    fan_level: int,
    fan_badge: str | None,
) -> None:
    room, sender, gift, count, coins, tier, ts = head
    event = GiftEvent(
        room=room,
        sender=sender,
        gift=gift,
        count=count,
        coins=coins,
        tier=tier,
        ts=ts,
        stream_id=stream_id,
        request_id=request_id,
        fan_level=fan_level,
        fan_badge=fan_badge,
    )
    direct = gift_event_wire(*head, stream_id, request_id, fan_level, fan_badge)
    # Equal, and in the same order: the same MessagePack bytes go out.
    assert list(direct.items()) == list(to_wire(event).items())
    assert msgpack.packb(direct) == msgpack.packb(to_wire(event))
