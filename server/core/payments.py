"""Payment-provider callbacks: signing, verification and the confirmed payment.

A provider confirms a paid order by POSTing JSON to ``/api/payments/webhook``
with the header

    Giftstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

where the HMAC, keyed by the shared webhook secret, covers
``"<t>." + raw body``. A callback whose signature does not match (compared in
constant time) or whose timestamp is further than the tolerance from now is
refused; a replay of a good one credits nothing, because crediting is keyed
by the payment id (see ``server/store/lua/recharge.lua``).

Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from server.errors import AuthError, BadField, BadRequest

SIGNATURE_HEADER = "Giftstream-Signature"
PAYMENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
ORDER_ID = re.compile(r"^[a-f0-9]{32}\Z")
TIMESTAMP = re.compile(r"^[0-9]{1,12}\Z")
HEX_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


SUCCEEDED = "payment.succeeded"
# The provider gave the money back (a refund), or the card's bank took it
# back (a chargeback): the order's coins are taken back (clawback.lua).
REFUNDED = "payment.refunded"
CHARGED_BACK = "payment.charged_back"
EVENT_TYPES = (SUCCEEDED, REFUNDED, CHARGED_BACK)


@dataclass(frozen=True, slots=True)
class PaymentConfirmation:
    payment_id: str
    order_id: str
    price: str
    currency: str
    type: str = SUCCEEDED


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float) -> str:
    """The signature header value a provider sends with ``body``."""
    timestamp = int(now)
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and TIMESTAMP.match(value):
            timestamp = int(value)
        elif key == "v1" and HEX_DIGEST.match(value):
            signatures.append(value)
    if timestamp is None or not signatures:
        raise AuthError("malformed signature header")
    return timestamp, signatures


def verify(secret: str, body: bytes, header: str | None, now: float, tolerance: int) -> None:
    """Raise ``AuthError`` unless ``header`` signs ``body`` freshly with ``secret``."""
    if not header:
        raise AuthError(f"missing {SIGNATURE_HEADER} header", reason="missing")
    timestamp, signatures = _parse_header(header)
    if abs(now - timestamp) > tolerance:
        raise AuthError("stale signature timestamp", reason="expired")
    expected = _digest(secret, timestamp, body)
    # Check every candidate so the time taken does not depend on which matched.
    matched = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matched):
        raise AuthError("bad signature", reason="bad_signature")


def _field(document: dict[str, object], key: str, pattern: re.Pattern[str] | None) -> str:
    value = document.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise BadField(f"{key!r} is missing or malformed")
    return value


def parse_confirmation(body: bytes) -> PaymentConfirmation:
    """Read a verified callback body: ``{"type": "payment.succeeded" |
    "payment.refunded" | "payment.charged_back", ...}``, the same fields for each."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest("callback body is not JSON") from exc
    if not isinstance(document, dict) or document.get("type") not in EVENT_TYPES:
        raise BadField("type must be one of " + ", ".join(repr(t) for t in EVENT_TYPES))
    return PaymentConfirmation(
        payment_id=_field(document, "payment_id", PAYMENT_ID),
        order_id=_field(document, "order_id", ORDER_ID),
        price=_field(document, "price", None),
        currency=_field(document, "currency", None),
        type=str(document["type"]),
    )


def confirmation_body(confirmation: PaymentConfirmation) -> bytes:
    """The JSON body a provider (or the sandbox) sends for a paid order."""
    document = {
        "type": confirmation.type,
        "payment_id": confirmation.payment_id,
        "order_id": confirmation.order_id,
        "price": confirmation.price,
        "currency": confirmation.currency,
    }
    return json.dumps(document, separators=(",", ":")).encode()
