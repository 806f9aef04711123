"""A call's credits in one ledger entry, as every reader of credits takes them.

``room_gifts.lua`` writes a ``credits`` entry per call (a record a gift);
``settle.lua`` a ``credit`` entry per gift. Reconcile, the history, the
earnings reports, goals and ``giftstream ledger verify`` each read both the
same way (``server/core/credit_entries.py``).
"""

from __future__ import annotations

import pytest

from server.core.credit_entries import (
    RECORD_FIELDS,
    BadCredits,
    credit_fields,
    credit_fields_of_bytes,
)
from server.core.goal_rules import COINS, filled_by
from server.core.history import GIFT_RECEIVED, rows_of
from server.core.ledger_chain import Balances
from server.core.report_sums import Credit

# Two roses and a corgi from two senders, the second in a stream: 50% share,
# the creator's carry passed from one to the next.
RECORDS = [
    "ann:r1|1|50|0|50|50|1700000000000|rose|1|",
    "bob:k-2|1|50|1|0|50|1700000000100|rose|1|",
    "ann:r2|299|50|149|50|14950|1700000000200|corgi|1|st-1-ab",
]
CREDITS = {"kind": "credits", "n": "3", "ts": "1700000000200", "d": ";".join(RECORDS)}


def test_a_credits_entry_reads_as_a_credit_entry_per_record_in_order() -> None:
    credits = credit_fields(CREDITS)
    assert [c["gift_key"] for c in credits] == ["ann:r1", "bob:k-2", "ann:r2"]
    assert credits[1] == {
        "kind": "credit",
        "gift_key": "bob:k-2",
        "sender": "bob",
        "coins": "1",
        "share": "50",
        "diamonds": "1",
        "carry_hundredths": "0",
        "platform_hundredths": "50",
        "paid": "1700000000100",
        "ts": "1700000000100",
        "gift": "rose",
        "count": "1",
        "stream": "",
    }
    assert credits[2]["stream"] == "st-1-ab"


def test_a_credit_entry_is_itself_and_other_kinds_hold_none() -> None:
    credit = {"kind": "credit", "gift_key": "ann:r1", "coins": "5", "diamonds": "2"}
    assert credit_fields(credit) == [credit]
    assert credit_fields({"kind": "gift", "amount": "-5"}) == []
    assert credit_fields_of_bytes({b"kind": b"withdraw"}) == []
    as_bytes = {k.encode(): v.encode() for k, v in CREDITS.items()}
    assert credit_fields_of_bytes(as_bytes) == credit_fields(CREDITS)


@pytest.mark.parametrize(
    "damage",
    [
        {"n": "4"},  # says more than it holds
        {"n": "2"},
        {"d": CREDITS["d"] + "|extra"},  # a record of eleven values
        {"d": "ann:r1|1|50"},
        {"d": CREDITS["d"].replace("|299|", "|-299|")},  # not a whole number
        {"d": CREDITS["d"].replace("|299|", "||")},  # a figure left out
    ],
)
def test_a_credits_entry_that_does_not_read_is_refused_not_counted_short(
    damage: dict[str, str],
) -> None:
    with pytest.raises(BadCredits):
        credit_fields({**CREDITS, **damage})


def test_the_earnings_reports_count_each_record() -> None:
    as_bytes = {k.encode(): v.encode() for k, v in CREDITS.items()}
    credits = Credit.all_from_entry(as_bytes)
    assert credits == [
        Credit("ann", "rose", 1, 1, 0, 1700000000000, ""),
        Credit("bob", "rose", 1, 1, 1, 1700000000100, ""),
        Credit("ann", "corgi", 1, 299, 149, 1700000000200, "st-1-ab"),
    ]
    # The same figures as the parser every other reader uses.
    fields = credit_fields(CREDITS)
    expected = [(c["sender"], c["gift"], int(c["coins"]), int(c["diamonds"])) for c in fields]
    assert [(c.sender, c.gift, c.coins, c.diamonds) for c in credits] == expected
    assert Credit.all_from_entry({b"kind": b"gift"}) == []
    not_a_number = as_bytes[b"d"].replace(b"|299|", b"|x|")
    negative = as_bytes[b"d"].replace(b"|299|", b"|-299|")
    for damage in (
        {b"d": b"ann:r1|1"},
        {b"n": b"4"},
        {b"n": b""},
        {b"d": not_a_number},
        {b"d": negative},
        {b"d": as_bytes[b"d"] + b"\xff"},  # not UTF-8
    ):
        assert Credit.all_from_entry({**as_bytes, **damage}) == [], damage


def test_goals_count_each_record() -> None:
    entries = [
        {k.encode(): v.encode() for k, v in CREDITS.items()},
        {b"kind": b"credit", b"coins": b"10", b"gift": b"rose", b"count": b"3"},
        {b"kind": b"gift", b"amount": b"-7"},
        {b"kind": b"credits", b"n": b"9", b"d": b"x"},  # damaged: left out
    ]
    assert filled_by(COINS, "", entries) == 1 + 1 + 299 + 10
    assert filled_by("gift", "rose", entries) == 1 + 1 + 3


def test_the_history_gives_a_row_a_gift_numbered_after_the_entry() -> None:
    rows = rows_of("1700000000200-0", CREDITS)
    # Newest first, as the history lists entries.
    assert [(r["id"], r["kind"], r["diamonds"], r["from"], r["at"]) for r in rows] == [
        ("1700000000200-0.2", GIFT_RECEIVED, 149, "ann", 1700000000200),
        ("1700000000200-0.1", GIFT_RECEIVED, 1, "bob", 1700000000100),
        ("1700000000200-0.0", GIFT_RECEIVED, 0, "ann", 1700000000000),
    ]
    assert rows[0]["stream_id"] == "st-1-ab"
    # Any other entry is one row with the entry's own id.
    single = rows_of("5-0", {"kind": "credit", "gift_key": "ann:x", "diamonds": "4", "ts": "5"})
    assert [(r["id"], r["diamonds"]) for r in single] == [("5-0", 4)]
    assert rows_of("6-0", {**CREDITS, "n": "7"}) == []


def test_ledger_verify_sums_each_records_diamonds() -> None:
    balances = Balances()
    assert balances.apply(CREDITS) is None
    assert balances.diamonds == 0 + 1 + 149
    assert balances.apply({**CREDITS, "d": "x"}) is not None


def test_records_hold_a_credit_entrys_fields() -> None:
    # What settle.lua writes in a credit entry, less what a record does not
    # repeat: its kind, sender (in the gift key) and ts (its paid).
    settle_fields = {
        "gift_key", "coins", "share", "diamonds", "carry_hundredths", "platform_hundredths",
        "ts", "sender", "gift", "count", "paid", "stream",
    }  # fmt: skip
    assert set(RECORD_FIELDS) == settle_fields - {"ts", "sender"}
