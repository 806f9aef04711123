"""A creator's credits as their ledger holds them: one per entry, or a call's in one. Pure.

``settle.lua`` writes a ``credit`` entry per gift. ``room_gifts.lua``, which
credits a room's creator for up to eight gifts a call, writes one
``credits`` entry per call instead: the same figures per gift, as records of
one field, where an entry per gift was about a fifth of Valkey's time a gift
(a command with thirty arguments and a hash of the entry, eight times a
call). Every reader of credits (reconcile, the history, the earnings
reports, goals, ``giftstream ledger verify``) takes both through
``credit_fields``, each credit as the fields a ``credit`` entry has.

A ``credits`` entry's fields: ``kind`` ``credits``, ``n`` (how many), ``ts``
(when the call's last gift was paid) and ``d``: the records joined by
``;``, each ``gift_key|coins|share|diamonds|carry_hundredths|
platform_hundredths|paid|gift|count|stream``, the stream last as it may be
empty. No value holds ``|`` or ``;``: user ids, request ids and gift ids
exclude both (``auth.py``, ``protocol.py``, ``catalog.py``) and ``gift.lua``
refuses a stream id with ``|``.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter

CREDIT = "credit"
CREDITS = "credits"
RECORD_SEPARATOR = ";"
FIELD_SEPARATOR = "|"
# A record's values, in order: the names of a ``credit`` entry's fields.
RECORD_FIELDS = (
    "gift_key",
    "coins",
    "share",
    "diamonds",
    "carry_hundredths",
    "platform_hundredths",
    "paid",
    "gift",
    "count",
    "stream",
)

# The record's values that are text; the others are whole numbers, 0 or more.
TEXT_FIELDS = frozenset({"gift_key", "gift", "stream"})
WHOLE_NUMBERS = tuple(name for name in RECORD_FIELDS if name not in TEXT_FIELDS)
# A record's whole numbers, picked out of its values in one call.
_whole_numbers_of = itemgetter(*(RECORD_FIELDS.index(name) for name in WHOLE_NUMBERS))


class BadCredits(ValueError):
    """A ``credits`` entry whose records do not read as ``RECORD_FIELDS``."""


def credit_fields(fields: Mapping[str, str]) -> list[dict[str, str]]:
    """The credits an entry records, each as a ``credit`` entry's fields (with
    ``kind``, ``sender`` and ``ts``): one for a ``credit`` entry, each record
    of a ``credits`` entry in order, none for any other kind.

    Raises ``BadCredits`` for a ``credits`` entry that is not well formed, so
    that a reader checking money says so instead of counting less.
    """
    kind = fields.get("kind")
    if kind == CREDIT:
        return [dict(fields)]
    if kind != CREDITS:
        return []
    out: list[dict[str, str]] = []
    for values in credit_records(fields.get("d", ""), fields.get("n")):
        credit = dict(zip(RECORD_FIELDS, values, strict=True))
        credit["kind"] = CREDIT
        credit["sender"] = credit["gift_key"].partition(":")[0]
        credit["ts"] = credit["paid"]
        out.append(credit)
    return out


def credit_records(d: str, n: str | None) -> list[list[str]]:
    """A ``credits`` entry's records (its ``d`` and ``n``), each as its values in
    ``RECORD_FIELDS`` order, checked as ``credit_fields`` checks them.

    For a reader that wants a record's figures and not a dict of them: the
    earnings reports count every credit in the process that acks gifts."""
    records = d.split(RECORD_SEPARATOR)
    if str(len(records)) != n:
        raise BadCredits(f"a credits entry says n={n!r}, holds {len(records)}")
    out: list[list[str]] = []
    for record in records:
        values = record.split(FIELD_SEPARATOR)
        if len(values) != len(RECORD_FIELDS):
            raise BadCredits(f"a credit record of {len(values)} values: {record!r}")
        if not all(map(str.isdigit, _whole_numbers_of(values))):
            raise BadCredits(f"a credit record with a figure not a whole number: {record!r}")
        out.append(values)
    return out


def credit_fields_of_bytes(fields: Mapping[bytes, bytes]) -> list[dict[str, str]]:
    """``credit_fields`` of an entry as Redis returns it, for readers that keep
    bytes; any entry not of a credit kind costs one lookup."""
    if fields.get(b"kind") not in (b"credit", b"credits"):
        return []
    return credit_fields({k.decode(): v.decode() for k, v in fields.items()})
