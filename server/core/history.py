"""A wallet's history as its owner reads it: ledger entries as rows. Pure.

The ledger (docs/money.md, "Ledger entries") has one entry per movement,
written by the script that moved the money. Each becomes one row with the
same fields whatever its kind, so that a page lists them without knowing the
scripts: ``kind``, ``coins`` and ``diamonds`` (signed: what this movement
did to the balance), ``balance_after`` (of the currency it moved; None where
the entry does not record it), the request or order id, the room, gift and
count of a gift, and ``at`` (ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.credit_entries import CREDITS, BadCredits, credit_fields

# Row kinds, as the API names them, by ledger entry kind.
RECHARGE = "recharge"
PROMO = "promo"
GIFT = "gift"
GIFT_RECEIVED = "gift_received"
WITHDRAWAL = "withdrawal"
PAYOUT = "payout"
PAYOUT_FAILED = "payout_failed"
REFUND = "refund"
CHARGEBACK = "chargeback"
KINDS = (
    RECHARGE,
    PROMO,
    GIFT,
    GIFT_RECEIVED,
    WITHDRAWAL,
    PAYOUT,
    PAYOUT_FAILED,
    REFUND,
    CHARGEBACK,
)
# A grant before promo.lua existed was a recharge of this order id.
GRANT_ORDER_PREFIX = "grant:"


def _int(fields: Mapping[str, str], name: str) -> int:
    value = fields.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else 0


def _int_or_none(fields: Mapping[str, str], name: str) -> int | None:
    value = fields.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else None


def rows_of(entry_id: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """One ledger entry's rows: one for most, one per gift for a ``credits``
    entry (a call's credits in one entry, ``credit_entries.py``), whose rows
    are numbered ``<entry id>.<n>`` from 0 in the order credited and listed
    newest first, as the history lists entries."""
    if fields.get("kind") != CREDITS:
        row = row_of(entry_id, fields)
        return [] if row is None else [row]
    try:
        credits = credit_fields(fields)
    except BadCredits:
        return []  # reconcile names it; a user's page goes on without it
    rows = []
    for n, credit in enumerate(credits):
        row = row_of(f"{entry_id}.{n}", credit)
        if row is not None:
            rows.append(row)
    return rows[::-1]


def row_of(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any] | None:
    """One ledger entry (its id and text fields) as a history row; None for
    an entry of a kind no row is made of."""
    kind = fields.get("kind")
    row: dict[str, Any] = {
        "id": entry_id,
        "kind": kind,
        "coins": 0,
        "diamonds": 0,
        "balance_after": None,
        "request_id": None,
        "order_id": None,
        "room": None,
        "gift": None,
        "count": None,
        "at": _int(fields, "ts") or int(entry_id.partition("-")[0]),
    }
    if kind == "recharge":
        order = fields.get("order", "")
        row |= {
            "kind": PROMO if order.startswith(GRANT_ORDER_PREFIX) else RECHARGE,
            "coins": _int(fields, "amount"),
            "balance_after": _int_or_none(fields, "balance"),
            "order_id": order,
            "bonus": _int(fields, "bonus"),
        }
    elif kind == "promo":
        row |= {
            "coins": _int(fields, "amount"),
            "balance_after": _int_or_none(fields, "balance"),
            "request_id": fields.get("req"),
            "reason": fields.get("reason"),
        }
    elif kind == "gift":
        row |= {
            "coins": _int(fields, "amount"),
            "balance_after": _int_or_none(fields, "balance"),
            "request_id": fields.get("req"),
            "room": fields.get("room"),
            "gift": fields.get("gift"),
            "count": _int(fields, "count"),
            "to": fields.get("to"),
        }
    elif kind == "credit":
        # The creator's side of a gift: the diamond balance after it is not
        # in the entry (the wallet sums a call's credits once).
        row |= {
            "kind": GIFT_RECEIVED,
            "diamonds": _int(fields, "diamonds"),
            "gift": fields.get("gift") or None,
            "count": _int_or_none(fields, "count"),
            "from": fields.get("sender") or fields.get("gift_key", "").partition(":")[0],
            "stream_id": fields.get("stream") or None,
        }
    elif kind == "withdraw":
        row |= {
            "kind": WITHDRAWAL,
            "diamonds": -_int(fields, "diamonds"),
            "balance_after": _int_or_none(fields, "balance"),
            "request_id": fields.get("req"),
            "withdrawal_id": fields.get("withdrawal"),
        }
    elif kind in (REFUND, CHARGEBACK):
        # A paid order's coins taken back: what was left of them; the
        # shortfall had been spent already.
        row |= {
            "coins": _int(fields, "amount"),
            "balance_after": _int_or_none(fields, "balance"),
            "order_id": fields.get("order"),
            "shortfall": _int(fields, "shortfall"),
            "reason": fields.get("reason"),
        }
    elif kind in ("payout", "payout_failed"):
        # Paid: the reserved diamonds left for good (the balance did not
        # move); failed: they came back to the balance.
        row |= {
            "diamonds": _int(fields, "diamonds") if kind == "payout_failed" else 0,
            "withdrawal_id": fields.get("withdrawal"),
            "paid_out": _int(fields, "diamonds") if kind == "payout" else 0,
        }
    else:
        return None
    return row
