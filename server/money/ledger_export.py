"""Every wallet's ledger written out for an auditor (``giftstream ledger export``).

The format and its check are ``server/core/ledger_chain.py``'s. A wallet's
line must hold what the wallet held after exactly the entries that follow
it, while gifts may still be moving: the wallet is read, then its ledger up
to its end, and the two agree when the hash of the last entry read is the
wallet's ``chain`` (both are written by the same script call). When they do
not, a movement came in between: the wallet is read again and the entries
after the last one read are added, until they agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core import ledger_chain
from server.core.ledger_chain import Field, exact_text

LEDGER_PAGE = 1000
# A wallet's entries, in order.
Entries = list[tuple[str, list[Field]]]
# Reads of one wallet before giving up on it agreeing with its ledger: a
# wallet that moves this often while exported is better exported later.
MAX_ROUNDS = 50


class LedgerBusy(Exception):
    """A wallet kept moving while its ledger was read."""


@dataclass(frozen=True)
class Exported:
    wallets: int
    entries: int


async def export(
    redis: Redis, key_prefix: str, write: Callable[[str], Any], now_ms: int
) -> Exported:
    """Write the export, line by line, through ``write``."""
    write(ledger_chain.header_line(key_prefix, now_ms))
    start = len(key_prefix) + len(":{w:")
    users: list[str] = []
    async for key in redis.scan_iter(match=f"{key_prefix}:{{w:*}}:wallet", count=1000):
        text = exact_text(key)
        users.append(text[start : text.index("}", start)])
    entries = 0
    # In order of user, so that two exports of the same books are the same file.
    for user in sorted(users):
        base = f"{key_prefix}:{{w:{user}}}"
        head, (coins, diamonds, reserved), chain = await _agreeing(redis, base)
        write(ledger_chain.wallet_line(user, head, coins, diamonds, reserved, len(chain)))
        for entry_id, fields in chain:
            write(ledger_chain.entry_line(user, entry_id, fields))
        entries += len(chain)
    write(ledger_chain.end_line(len(users)))
    return Exported(len(users), entries)


async def _agreeing(redis: Redis, base: str) -> tuple[str, tuple[int, int, int], Entries]:
    """The wallet's chain head and coins, diamonds and reserved, and its
    ledger, read until they agree."""
    chain: Entries = []
    for _ in range(MAX_ROUNDS):
        raw = await redis.hmget(f"{base}:wallet", ["chain", "coins", "diamonds", "reserved"])
        head = exact_text(raw[0]) if raw[0] is not None else ""
        coins, diamonds, reserved = (int(exact_text(v)) if v is not None else 0 for v in raw[1:])
        after = chain[-1][0] if chain else None
        chain += await _entries_after(redis, f"{base}:ledger", after)
        last = chain[-1] if chain else None
        chained = last is not None and ledger_chain.is_chained(last[1])
        last_hash = ledger_chain.entry_hash(*last) if last is not None and chained else ""
        if last_hash == head:
            return head, (coins, diamonds, reserved), chain
    raise LedgerBusy(f"{base}: the wallet kept moving while its ledger was read")


async def _entries_after(redis: Redis, key: str, after: str | None) -> Entries:
    """The ledger's entries after ``after`` (all with None), to its end, in pages."""
    found: Entries = []
    start = "-" if after is None else "(" + after
    while True:
        page: list[Any] = await redis.xrange(key, min=start, count=LEDGER_PAGE) or []
        for entry_id, fields in page:
            pairs = [(exact_text(k), exact_text(v)) for k, v in fields.items()]
            found.append((exact_text(entry_id), pairs))
        if len(page) < LEDGER_PAGE:
            return found
        start = "(" + found[-1][0]
