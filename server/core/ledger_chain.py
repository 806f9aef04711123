"""The ledger's hash chain, and an export of it checked with no Redis at all.

Every ledger entry carries in its first field, ``prev``, the hash of the
entry before it in the same wallet's ledger, and the wallet keeps the hash
of its last entry (``chain``): ``server/store/lua/lib_chain.lua`` writes
both in the call that moves the money. :func:`entry_hash` is the same
function in Python. An edited entry changes its hash, so the entry after
it no longer points at it; a removed or moved entry leaves an entry whose
``prev`` is not the hash before it; an entry removed from the end leaves a
last entry that is not the wallet's ``chain``.

An export (``giftstream ledger export``) is JSON lines: a header, then for
each wallet a line with what the wallet held when its ledger was read
(``head``, ``coins``, ``diamonds``, ``reserved``) and one line per entry,
in order. :func:`verify` walks it: the chain of every wallet, and every
balance recomputed from the entries, against the ``balance`` the entries
state and the wallet's line. It reports the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.core.credit_entries import CREDIT, CREDITS, BadCredits, credit_fields

EXPORT_FORMAT = "giftstream-ledger"
EXPORT_VERSION = 1

# A field's name and value, as Redis keeps them, in the entry's order.
Field = tuple[str, str]


def exact_text(value: Any) -> str:
    """Redis's bytes as text that encodes back to the same bytes, whatever
    they are: the hash is of the bytes."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _bytes(text: str) -> bytes:
    # Redis holds bytes; an export holds text. A value that is not UTF-8
    # travels as surrogates (json escapes them) and comes back byte for byte.
    return text.encode("utf-8", "surrogateescape")


def entry_hash(entry_id: str, fields: Sequence[Field]) -> str:
    """The entry's hash, as lib_chain.lua computes it: SHA-1 of the id, then
    each field's name and value in order, joined by newlines. No value the
    scripts write holds a newline (they refuse one), so the text reads back
    one way only; :func:`newline_in` finds an entry that breaks that rule."""
    parts = [entry_id]
    for name, value in fields:
        parts += (name, value)
    return hashlib.sha1(_bytes("\n".join(parts)), usedforsecurity=False).hexdigest()


def newline_in(fields: Sequence[Field]) -> str | None:
    """The name of a field whose value holds a newline: no script writes one."""
    return next((name for name, value in fields if "\n" in value), None)


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A Redis stream id (``<ms>-<n>``) as a number pair, for ordering."""
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def is_chained(fields: Sequence[Field]) -> bool:
    """Whether an entry was written on the chain (its first field is ``prev``)."""
    return bool(fields) and fields[0][0] == "prev"


@dataclass
class Chain:
    """One ledger's chain, walked entry by entry in order. A ledger may start
    with entries from before the chain (no ``prev``); after its first chained
    entry, every entry must be chained."""

    # The hash of the last chained entry; None until the first.
    last_hash: str | None = None

    @property
    def started(self) -> bool:
        return self.last_hash is not None

    @property
    def head(self) -> str:
        """What the wallet's ``chain`` must be after the entries walked."""
        return self.last_hash or ""

    def link(self, entry_id: str, fields: Sequence[Field]) -> str | None:
        """Take the next entry: what is wrong with its link, if anything."""
        if not is_chained(fields):
            return "an entry without prev inside the chain" if self.started else None
        if (bad := newline_in(fields)) is not None:
            return f"its {bad} holds a newline: not written so"
        if fields[0][1] != self.head:
            return (
                "its prev is not the hash of the entry before it: an entry before it "
                "was edited, removed or moved"
            )
        self.last_hash = entry_hash(entry_id, fields)
        return None


NOT_THE_HEAD = (
    "its last entry is not the one the wallet last wrote (its chain head): "
    "entries at the end were removed or added"
)


def chain_breach(entries: Iterable[tuple[str, Sequence[Field]]], head: str) -> str | None:
    """What is wrong with one ledger's chain, read whole, against the hash its
    wallet keeps (``head``); None when it is intact. For ``reconcile``."""
    chain = Chain()
    for entry_id, fields in entries:
        if (wrong := chain.link(entry_id, fields)) is not None:
            return f"entry {entry_id}: {wrong}"
    return None if chain.head == head else NOT_THE_HEAD


# Ledger kinds by what they move (docs/money.md's ledger entries).
COIN_KINDS = frozenset({"recharge", "gift", "promo", "refund", "chargeback"})


@dataclass
class Balances:
    """What a wallet holds, recomputed from its ledger alone."""

    coins: int = 0
    diamonds: int = 0
    reserved: int = 0

    def apply(self, fields: dict[str, str]) -> str | None:
        """One entry's movement; what is wrong with it, if anything."""
        kind = fields.get("kind", "")
        if kind in COIN_KINDS:
            self.coins += int(fields["amount"])
            if "balance" in fields and int(fields["balance"]) != self.coins:
                stated = fields["balance"]
                return f"states a balance of {stated} coins, the entries sum to {self.coins}"
        elif kind in (CREDIT, CREDITS):
            try:
                self.diamonds += sum(int(c["diamonds"]) for c in credit_fields(fields))
            except BadCredits as bad:
                return str(bad)
        elif kind == "withdraw":
            diamonds = int(fields["diamonds"])
            self.diamonds -= diamonds
            self.reserved += diamonds
            after = (int(fields["balance"]), int(fields["reserved"]))
            if after != (self.diamonds, self.reserved):
                return (
                    f"states {after[0]} diamonds and {after[1]} reserved, the entries sum "
                    f"to {self.diamonds} and {self.reserved}"
                )
        elif kind in ("payout", "payout_failed"):
            diamonds = int(fields["diamonds"])
            self.reserved -= diamonds
            if kind == "payout_failed":
                self.diamonds += diamonds
        else:
            return f"is of an unknown kind {kind!r}"
        if min(self.coins, self.diamonds, self.reserved) < 0:
            return "takes a balance below zero"
        return None


@dataclass(frozen=True)
class Break:
    """The first thing found wrong in an export."""

    line: int
    wallet: str | None
    entry_id: str | None
    reason: str

    def describe(self) -> str:
        where = f"line {self.line}"
        if self.wallet is not None:
            where += f", wallet {self.wallet}"
        if self.entry_id is not None:
            where += f", entry {self.entry_id}"
        return f"{where}: {self.reason}"


@dataclass
class Verdict:
    wallets: int = 0
    entries: int = 0
    # Entries written before the ledger was chained (no ``prev``): counted
    # in the balances, not covered by any hash.
    unchained: int = 0
    coins: int = 0
    diamonds: int = 0
    reserved: int = 0
    broken: Break | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "wallets": self.wallets,
            "entries": self.entries,
            "unchained": self.unchained,
            "coins": self.coins,
            "diamonds": self.diamonds,
            "reserved": self.reserved,
            "broken": None if self.broken is None else self.broken.describe(),
        }

    def describe(self) -> str:
        lines = [
            f"wallets: {self.wallets:,}",
            f"entries: {self.entries:,} ({self.unchained:,} from before the chain)",
            f"recomputed from the entries: {self.coins:,} coins held, "
            f"{self.diamonds:,} diamonds held, {self.reserved:,} reserved",
        ]
        if self.broken is None:
            return "\n".join([*lines, "ledger verified: every chain intact, every balance agrees"])
        return "\n".join([*lines, f"BROKEN at {self.broken.describe()}"])


@dataclass
class _Wallet:
    """One wallet's walk: its line, and where its chain has got to."""

    user: str
    line: int
    head: str
    held: tuple[int, int, int]
    entries_expected: int
    balances: Balances = field(default_factory=Balances)
    chain: Chain = field(default_factory=Chain)
    last_id: tuple[int, int] = (-1, -1)
    entries: int = 0


class _Broken(Exception):
    def __init__(self, line: int, wallet: str | None, entry_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.found = Break(line, wallet, entry_id, reason)


def verify(lines: Iterable[str]) -> Verdict:
    """Walk an export: every chain and every balance, with no Redis."""
    verdict = Verdict()
    try:
        _walk(enumerate(lines, start=1), verdict)
    except _Broken as broken:
        verdict.broken = broken.found
    return verdict


def _walk(numbered: Iterator[tuple[int, str]], verdict: Verdict) -> None:
    header = next(numbered, None)
    if header is None or _record(*header).get("format") != EXPORT_FORMAT:
        raise _Broken(1, None, None, f"not a {EXPORT_FORMAT} export (no header line)")
    if _record(*header).get("version") != EXPORT_VERSION:
        raise _Broken(1, None, None, f"an export of a version other than {EXPORT_VERSION}")
    wallet: _Wallet | None = None
    seen: set[str] = set()
    for number, text in numbered:
        record = _record(number, text)
        if "entry" in record:
            if wallet is None:
                raise _Broken(number, None, None, "an entry before any wallet line")
            _entry(number, record, wallet)
            verdict.entries += 1
            if not wallet.chain.started:
                verdict.unchained += 1
        elif "wallet" in record:
            if wallet is not None:
                _close(wallet, verdict)
            wallet = _open(number, record, seen)
            verdict.wallets += 1
        elif record.get("end") is True:
            if wallet is not None:
                _close(wallet, verdict)
            if record.get("wallets") != verdict.wallets:
                raise _Broken(
                    number,
                    None,
                    None,
                    f"the export says {record.get('wallets')} wallets, it holds {verdict.wallets}",
                )
            if next(numbered, None) is not None:
                raise _Broken(number + 1, None, None, "lines after the end of the export")
            return
        else:
            raise _Broken(number, None, None, "a line that is neither a wallet nor an entry")
    raise _Broken(
        verdict.entries + verdict.wallets + 2,
        None,
        None,
        "the export stops before its end line (cut short)",
    )


def _record(number: int, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _Broken(number, None, None, f"not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise _Broken(number, None, None, "not a JSON object")
    return value


def _open(number: int, record: dict[str, Any], seen: set[str]) -> _Wallet:
    try:
        user = str(record["wallet"])
        held = (int(record["coins"]), int(record["diamonds"]), int(record["reserved"]))
        wallet = _Wallet(user, number, str(record["head"]), held, int(record["entries"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _Broken(number, None, None, f"a wallet line without {exc}") from exc
    if user in seen:
        raise _Broken(number, user, None, "a second line for this wallet")
    seen.add(user)
    return wallet


def _entry(number: int, record: dict[str, Any], wallet: _Wallet) -> None:
    entry_id, fields = _parse_entry(number, record, wallet.user)
    order = _id_order(number, wallet.user, entry_id)
    if order <= wallet.last_id:
        raise _Broken(
            number, wallet.user, entry_id, "out of order: its id is not after the one before"
        )
    wallet.last_id = order
    wallet.entries += 1
    if (broken := wallet.chain.link(entry_id, fields)) is not None:
        raise _Broken(number, wallet.user, entry_id, broken)
    try:
        wrong = wallet.balances.apply(dict(fields))
    except (KeyError, ValueError) as exc:
        wrong = f"lacks a number its kind needs ({exc})"
    if wrong is not None:
        raise _Broken(number, wallet.user, entry_id, f"the entry {wrong}")


def _parse_entry(number: int, record: dict[str, Any], user: str) -> tuple[str, list[Field]]:
    entry_id, fields = record.get("entry"), record.get("fields")
    if record.get("of") != user:
        raise _Broken(number, user, None, f"an entry of {record.get('of')!r} among {user!r}'s")
    if not isinstance(entry_id, str) or not isinstance(fields, list):
        raise _Broken(number, user, None, "an entry line without its id or fields")
    pairs: list[Field] = []
    for pair in fields:
        is_pair = isinstance(pair, list) and len(pair) == 2
        if not (is_pair and all(isinstance(part, str) for part in pair)):
            raise _Broken(number, user, entry_id, "a field that is not a [name, value] pair")
        pairs.append((pair[0], pair[1]))
    return entry_id, pairs


def _id_order(number: int, user: str, entry_id: str) -> tuple[int, int]:
    try:
        return stream_id_key(entry_id)
    except ValueError as exc:
        raise _Broken(number, user, entry_id, "not a stream id") from exc


def _close(wallet: _Wallet, verdict: Verdict) -> None:
    """A wallet's last entry read: its chain ends at the wallet's head and
    its balances are what the wallet held."""
    if wallet.entries != wallet.entries_expected:
        raise _Broken(
            wallet.line,
            wallet.user,
            None,
            f"the wallet line says {wallet.entries_expected} entries, {wallet.entries} follow it",
        )
    if wallet.chain.head != wallet.head:
        raise _Broken(wallet.line, wallet.user, None, NOT_THE_HEAD)
    b = wallet.balances
    if (b.coins, b.diamonds, b.reserved) != wallet.held:
        raise _Broken(
            wallet.line,
            wallet.user,
            None,
            f"the wallet held {wallet.held[0]} coins, {wallet.held[1]} diamonds and "
            f"{wallet.held[2]} reserved; its entries sum to {b.coins}, {b.diamonds} "
            f"and {b.reserved}",
        )
    verdict.coins += b.coins
    verdict.diamonds += b.diamonds
    verdict.reserved += b.reserved


def header_line(key_prefix: str, exported_ms: int) -> str:
    return _line(
        {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "key_prefix": key_prefix,
            "exported_ms": exported_ms,
        }
    )


def wallet_line(
    user: str, head: str, coins: int, diamonds: int, reserved: int, entries: int
) -> str:
    return _line(
        {
            "wallet": user,
            "head": head,
            "coins": coins,
            "diamonds": diamonds,
            "reserved": reserved,
            "entries": entries,
        }
    )


def entry_line(user: str, entry_id: str, fields: Sequence[Field]) -> str:
    return _line({"of": user, "entry": entry_id, "fields": [list(pair) for pair in fields]})


def end_line(wallets: int) -> str:
    return _line({"end": True, "wallets": wallets})


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"
