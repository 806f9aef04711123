"""Payment-provider callbacks: the signature header and the confirmed payment it carries."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest

from server.core.payments import (
    SIGNATURE_HEADER,
    PaymentConfirmation,
    confirmation_body,
    parse_confirmation,
    sign,
    verify,
)
from server.errors import AuthError, BadField, BadRequest

SECRET = "whsec-test-0123456789abcdef"
NOW = 1_767_225_600.0
TOLERANCE = 300
ORDER = "0123456789abcdef0123456789abcdef"
BODY = b'{"type":"payment.succeeded","payment_id":"pi_1","order_id":"' + ORDER.encode() + b'"}'


def hex_hmac(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def confirmation(**changes: str) -> PaymentConfirmation:
    fields = {"payment_id": "pi_3N1x:42.a-b", "order_id": ORDER, "price": "4.99", "currency": "USD"}
    fields.update(changes)
    return PaymentConfirmation(**fields)


def document(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "type": "payment.succeeded",
        "payment_id": "pi_1",
        "order_id": ORDER,
        "price": "0.99",
        "currency": "USD",
    }
    fields.update(changes)
    return fields


def body_of(fields: dict[str, object]) -> bytes:
    return json.dumps(fields).encode()


def body_without(key: str) -> bytes:
    fields = document()
    del fields[key]
    return body_of(fields)


# ---------------------------------------------------------------- signing


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "Giftstream-Signature"


def test_sign_format() -> None:
    header = sign(SECRET, BODY, NOW + 0.75)
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match is not None
    assert int(match[1]) == int(NOW)
    assert match[2] == hex_hmac(SECRET, int(NOW), BODY)


def test_round_trip() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), NOW, TOLERANCE)


def test_header_from_an_independent_signer_is_accepted() -> None:
    header = f"t={int(NOW)},v1={hex_hmac(SECRET, int(NOW), BODY)}"
    verify(SECRET, BODY, header, NOW + 1, TOLERANCE)


def test_empty_body_can_be_signed() -> None:
    verify(SECRET, b"", sign(SECRET, b"", NOW), NOW, TOLERANCE)


# ---------------------------------------------------------------- forgery


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, BODY, sign("another-secret", BODY, NOW), NOW, TOLERANCE)


@pytest.mark.parametrize(
    "altered",
    [
        BODY + b" ",
        BODY[:-1],
        b"",
        BODY.replace(b"pi_1", b"pi_2"),
        BODY.replace(ORDER.encode(), ORDER[::-1].encode()),
        BODY.upper(),
    ],
)
def test_altered_body_is_refused(altered: bytes) -> None:
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, altered, header, NOW, TOLERANCE)


def test_every_flipped_byte_of_the_body_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)
    for position in range(len(BODY)):
        altered = bytearray(BODY)
        altered[position] ^= 0x01
        with pytest.raises(AuthError):
            verify(SECRET, bytes(altered), header, NOW, TOLERANCE)


@pytest.mark.parametrize("shift", [-1, 1, 60])
def test_altered_timestamp_is_refused(shift: int) -> None:
    digest = hex_hmac(SECRET, int(NOW), BODY)
    header = f"t={int(NOW) + shift},v1={digest}"
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, BODY, header, NOW, TOLERANCE)


def test_every_changed_hex_digit_of_the_signature_is_refused() -> None:
    digest = hex_hmac(SECRET, int(NOW), BODY)
    for position, char in enumerate(digest):
        other = "0" if char != "0" else "1"
        forged = digest[:position] + other + digest[position + 1 :]
        with pytest.raises(AuthError):
            verify(SECRET, BODY, f"t={int(NOW)},v1={forged}", NOW, TOLERANCE)


@pytest.mark.parametrize("cut", [1, 32, 63])
def test_truncated_signature_is_refused(cut: int) -> None:
    digest = hex_hmac(SECRET, int(NOW), BODY)
    with pytest.raises(AuthError):
        verify(SECRET, BODY, f"t={int(NOW)},v1={digest[:cut]}", NOW, TOLERANCE)


# ---------------------------------------------------------------- freshness


@pytest.mark.parametrize("age", [0, 1, TOLERANCE - 1, TOLERANCE, -TOLERANCE, -1])
def test_within_tolerance_is_accepted(age: int) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), NOW + age, TOLERANCE)


@pytest.mark.parametrize("age", [TOLERANCE + 1, TOLERANCE + 0.5, 10 * TOLERANCE, NOW])
def test_stale_past_is_refused(age: float) -> None:
    with pytest.raises(AuthError, match="stale"):
        verify(SECRET, BODY, sign(SECRET, BODY, NOW), NOW + age, TOLERANCE)


@pytest.mark.parametrize("ahead", [TOLERANCE + 1, TOLERANCE + 2, 10 * TOLERANCE])
def test_stale_future_is_refused(ahead: float) -> None:
    with pytest.raises(AuthError, match="stale"):
        verify(SECRET, BODY, sign(SECRET, BODY, NOW + ahead), NOW, TOLERANCE)


def test_a_replayed_header_goes_stale() -> None:
    header = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, header, NOW + TOLERANCE, TOLERANCE)
    with pytest.raises(AuthError):
        verify(SECRET, BODY, header, NOW + TOLERANCE + 1, TOLERANCE)


# ---------------------------------------------------------------- header shape


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(AuthError, match="missing"):
        verify(SECRET, BODY, header, NOW, TOLERANCE)


def malformed_headers() -> list[str]:
    digest = hex_hmac(SECRET, int(NOW), BODY)
    t = int(NOW)
    return [
        "garbage",
        ",",
        ",,,",
        "=",
        "t=,v1=",
        f"v1={digest}",
        f"t={t}",
        f"t=abc,v1={digest}",
        f"t=-{t},v1={digest}",
        f"t=+{t},v1={digest}",
        f"t={t}.0,v1={digest}",
        f"t= {t}x,v1={digest}",
        f"t={t},v0={digest}",
        f"T={t},V1={digest}",
        f"t:{t},v1:{digest}",
        f"t={t};v1={digest}",
        f"{t},{digest}",
    ]


@pytest.mark.parametrize("header", malformed_headers())
def test_malformed_header(header: str) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify(SECRET, BODY, header, NOW, TOLERANCE)


@pytest.mark.parametrize("entry", ["v1", "v1=", "v1= "])
def test_empty_v1_entry_is_refused(entry: str) -> None:
    with pytest.raises(AuthError):
        verify(SECRET, BODY, f"t={int(NOW)},{entry}", NOW, TOLERANCE)


def test_multiple_v1_entries_where_one_matches() -> None:
    good = hex_hmac(SECRET, int(NOW), BODY)
    old = hex_hmac("rotated-out-secret", int(NOW), BODY)
    verify(SECRET, BODY, f"t={int(NOW)},v1={old},v1={good}", NOW, TOLERANCE)
    verify(SECRET, BODY, f"t={int(NOW)},v1={good},v1={old}", NOW, TOLERANCE)
    verify(SECRET, BODY, f"t={int(NOW)},v1=,v1={good},v1=zz", NOW, TOLERANCE)


def test_multiple_v1_entries_where_none_matches() -> None:
    first = hex_hmac("one", int(NOW), BODY)
    second = hex_hmac("two", int(NOW), BODY)
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, BODY, f"t={int(NOW)},v1={first},v1={second}", NOW, TOLERANCE)


def test_entries_in_any_order_with_spaces_and_unknown_schemes() -> None:
    good = hex_hmac(SECRET, int(NOW), BODY)
    verify(SECRET, BODY, f"v0=abc, v1={good} , t={int(NOW)}", NOW, TOLERANCE)


def test_signature_in_a_v0_entry_is_not_taken() -> None:
    good = hex_hmac(SECRET, int(NOW), BODY)
    with pytest.raises(AuthError):
        verify(SECRET, BODY, f"t={int(NOW)},v0={good},v1=00", NOW, TOLERANCE)


def test_verify_errors_are_unauthorized() -> None:
    with pytest.raises(AuthError) as caught:
        verify(SECRET, BODY, "garbage", NOW, TOLERANCE)
    assert caught.value.http_status == 401


# ---------------------------------------------------------------- the confirmation


def test_parse_confirmation() -> None:
    assert parse_confirmation(body_of(document())) == PaymentConfirmation(
        payment_id="pi_1", order_id=ORDER, price="0.99", currency="USD"
    )


def test_parse_confirmation_ignores_extra_fields() -> None:
    parsed = parse_confirmation(body_of(document(livemode=False, amount=99)))
    assert parsed.payment_id == "pi_1"


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b"{'type': 1}"])
def test_body_that_is_not_json(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_confirmation(body)


@pytest.mark.parametrize("body", [b"[]", b"null", b'"payment.succeeded"', b"1", b"true"])
def test_body_that_is_not_an_object(body: bytes) -> None:
    with pytest.raises(BadField):
        parse_confirmation(body)


@pytest.mark.parametrize(
    "kind", ["payment.failed", "payment.refund", "Payment.Succeeded", "", None, 1, ["x"]]
)
def test_type_must_be_one_the_server_takes(kind: object) -> None:
    with pytest.raises(BadField, match="type"):
        parse_confirmation(body_of(document(type=kind)))


@pytest.mark.parametrize("kind", ["payment.succeeded", "payment.refunded", "payment.charged_back"])
def test_the_three_event_types_are_read(kind: str) -> None:
    assert parse_confirmation(body_of(document(type=kind))).type == kind


def test_type_is_required() -> None:
    with pytest.raises(BadField):
        parse_confirmation(body_without("type"))


@pytest.mark.parametrize(
    "order_id",
    [
        ORDER[:-1],
        ORDER + "0",
        ORDER.upper(),
        "g" * 32,
        "",
        " " + ORDER[1:],
        ORDER[:16] + "-" + ORDER[17:],
        "../" + ORDER[3:],
        None,
        12,
        [ORDER],
    ],
)
def test_bad_order_id(order_id: object) -> None:
    with pytest.raises(BadField, match="order_id"):
        parse_confirmation(body_of(document(order_id=order_id)))


@pytest.mark.parametrize("order_id", ["0" * 32, "f" * 32, ORDER])
def test_good_order_id(order_id: str) -> None:
    assert parse_confirmation(body_of(document(order_id=order_id))).order_id == order_id


@pytest.mark.parametrize(
    "payment_id",
    ["", "x" * 129, "pi 1", "pi/1", "pi_1;", "pi_1\u00e9", "{o:1}", "*", None, 7, ["pi_1"]],
)
def test_bad_payment_id(payment_id: object) -> None:
    with pytest.raises(BadField, match="payment_id"):
        parse_confirmation(body_of(document(payment_id=payment_id)))


@pytest.mark.parametrize("payment_id", ["p", "x" * 128, "pi_3N1x:42.a-b", "ch_ABC-123.45:6"])
def test_good_payment_id(payment_id: str) -> None:
    assert parse_confirmation(body_of(document(payment_id=payment_id))).payment_id == payment_id


@pytest.mark.parametrize("key", ["payment_id", "order_id", "price", "currency"])
def test_required_fields(key: str) -> None:
    with pytest.raises(BadField, match=key):
        parse_confirmation(body_without(key))


@pytest.mark.parametrize(("key", "value"), [("price", 0.99), ("price", None), ("currency", 840)])
def test_price_and_currency_must_be_text(key: str, value: object) -> None:
    with pytest.raises(BadField):
        parse_confirmation(body_of(document(**{key: value})))


def test_confirmation_body_round_trip() -> None:
    original = confirmation()
    assert parse_confirmation(confirmation_body(original)) == original


def test_confirmation_body_is_compact_json() -> None:
    body = confirmation_body(confirmation(price="99.99"))
    assert json.loads(body) == {
        "type": "payment.succeeded",
        "payment_id": "pi_3N1x:42.a-b",
        "order_id": ORDER,
        "price": "99.99",
        "currency": "USD",
    }
    assert b" " not in body


def test_signed_confirmation_end_to_end() -> None:
    body = confirmation_body(confirmation())
    header = sign(SECRET, body, NOW)
    verify(SECRET, body, header, NOW + 5, TOLERANCE)
    assert parse_confirmation(body).order_id == ORDER
    with pytest.raises(AuthError):
        verify(SECRET, confirmation_body(confirmation(price="0.01")), header, NOW, TOLERANCE)
