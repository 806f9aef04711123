"""``settle.lua`` takes many credits in one call; the result is the same as one by one.

The settlement worker hands a storm's credits to the script in batches, and
the earnings reports count a run of credits at a time (``report.lua``),
summed before they are written. These tests hold the batched path to the
plain one on the real scripts and the real Valkey: credits settled and
counted one at a time, against a batch settled at once and counted in one
run. The same wallets, ledgers, idempotency records and reports, key for
key, for a batch that crosses days, starts a new stream half way, repeats a
gift key and carries a malformed credit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from server.core.earnings_keys import DAY_MS, HOUR_MS
from server.money.reports import Reports
from server.money.settlement import CATCH_UP_BATCH, WORKER_BATCH, Settler
from server.money.wallet import (
    SETTLE_BATCH,
    SETTLE_BATCH_COINS,
    PendingCredit,
    Wallets,
    _settle_chunks,
)
from server.settings import Settings
from server.store.calls import as_text
from server.store.scripts import Scripts

T0 = 1_767_225_600_000 + 10 * HOUR_MS  # 2026-01-01T10:00:00Z
LATER = T0 + HOUR_MS  # a second stream's gifts
NOW = T0 + 2 * HOUR_MS


def credit(key: str, sender: str, coins: int, paid_at: int, **more: Any) -> PendingCredit:
    fields: dict[str, Any] = {
        "creator": "carol",
        "share_percent": 50,
        "gift": "rose",
        "count": 1,
        "stream_id": "st-1",
    }
    fields |= more
    return PendingCredit(
        gift_key=f"{sender}:{key}",
        sender=sender,
        creator=fields["creator"],
        coins=coins,
        share_percent=fields["share_percent"],
        ts_ms=paid_at,
        room=fields["creator"],
        gift=fields["gift"],
        count=fields["count"],
        stream_id=fields["stream_id"],
    )


# In order: a stream's gifts; a gift paid yesterday, outside a stream
# (settled late: its day only); a second stream's gift half way through the
# batch; a gift key seen twice; a sender id the script refuses; another
# creator; an outbox entry from before gift ids and streams; odd coins, so
# that floors differ.
CREDITS = [
    credit("a1", "ann", 1, T0),
    credit("b1", "bob", 598, T0 + 60_000, gift="corgi", count=2),
    credit("a2", "ann", 1, T0 + 120_000),
    credit("y1", "bob", 299, T0 - DAY_MS, gift="corgi", stream_id=""),
    credit("a3", "ann", 1999, LATER, gift="rocket", stream_id="st-2"),
    credit("b1", "bob", 598, T0 + 60_000, gift="corgi", count=2),
    credit("x1", "bad sender!", 5, LATER),
    credit("d1", "ann", 33, T0, creator="dave", share_percent=70),
    credit("o1", "cid", 7, LATER + 1_000, gift="", count=0, stream_id=""),
]


async def books(redis: Redis, prefix: str) -> dict[str, Any]:
    """Everything under ``prefix``, keyed without it, in a form to compare."""
    found: dict[str, Any] = {}
    async for raw in redis.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        kind = as_text(await redis.type(key))
        if kind == "hash":
            value: Any = await redis.hgetall(key)
            # The hash of the ledger's last entry, whose id is a time of writing.
            value.pop(b"chain", None)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            # A report cursor is a ledger entry id: a time of writing.
            value = True if key.endswith(":cursor") else await redis.get(key)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "stream":
            # Entry ids are times of writing, and so each entry's prev (a hash of
            # the entry before it, its id included); the rest must match.
            value = [
                {k: v for k, v in (fields or {}).items() if k != b"prev"}
                for _, fields in await redis.xrange(key) or []
            ]
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        expiry = await redis.pexpiretime(key)
        # Absolute expiries (the day reports) must match; relative ones only exist.
        relative = (
            key.endswith((":stream", ":reports:pending")) or ":stream:" in key or ":settled:" in key
        )
        found[key.removeprefix(prefix)] = (kind, value, expiry > 0 if relative else expiry)
    return found


def wallets_for(redis: Redis, prefix: str) -> Wallets:
    return Wallets(redis, Scripts.register(redis), Settings(key_prefix=prefix))


async def count_reports(
    redis: Redis, prefix: str, creators: Sequence[str] = ("carol", "dave")
) -> None:
    reports = Reports(redis, Scripts.register(redis), prefix)
    for creator in creators:
        await reports.catch_up(creator)


async def test_a_batch_settles_as_its_credits_would_one_by_one(
    redis: Redis, key_prefix: str
) -> None:
    one_by_one = wallets_for(redis, f"{key_prefix}:one")
    singles: list[int | str] = []
    for each in CREDITS:
        try:
            singles.append(await one_by_one.settle(each, NOW))
        except RuntimeError as refused:
            singles.append(str(refused))
        await count_reports(redis, f"{key_prefix}:one")

    batched = await wallets_for(redis, f"{key_prefix}:many").settle_many(CREDITS, NOW)
    await count_reports(redis, f"{key_prefix}:many")
    assert [str(o) if isinstance(o, Exception) else o for o in batched] == singles
    assert singles[5] == singles[1] == 299  # the repeated key: credited once
    assert "bad_argument" in str(singles[6])

    alone = await books(redis, f"{key_prefix}:one")
    together = await books(redis, f"{key_prefix}:many")
    assert together == alone
    # The comparison is not of two empty books: the batch crossed a day and
    # two streams.
    wallet = together[":{w:carol}:wallet"][1]
    # Each credit's half added to carol's carry (hundredths): a1 carries 50,
    # b1 makes 299 and carries 50, a2 makes 1, y1 149 carrying 50, a3 1,000,
    # o1 3 carrying 50 (b1 again, x1 and d1 are not hers to count).
    assert int(wallet[b"diamonds"]) == 0 + 299 + 1 + 149 + 1000 + 3
    assert int(wallet[b"carry_hundredths"]) == 50
    first, second = together[":{w:carol}:earn:s:st-1"][1], together[":{w:carol}:earn:s:st-2"][1]
    assert (int(first[b"sends"]), int(first[b"coins"])) == (3, 600)
    assert (int(second[b"sends"]), int(second[b"coins"])) == (1, 1999)
    yesterday = f":{{w:carol}}:earn:d:{(T0 - DAY_MS) // DAY_MS}"
    assert int(together[yesterday][1][b"coins"]) == 299


async def test_a_call_from_many_senders_ranks_them_as_one_by_one_would(
    redis: Redis, key_prefix: str
) -> None:
    """A call sums each supporter's gifts before it writes their ranks: the
    ranks come out as settling one gift at a time makes them, for supporters
    ranked already and new ones, with repeats in the call."""
    earlier = [credit(f"e{i}", f"fan{i}", 7 + i, T0) for i in range(4)]
    storm = [credit(f"k{i}", f"fan{i % 9}", 11 + 13 * i, T0 + 1_000 + i) for i in range(30)]
    one_by_one = wallets_for(redis, f"{key_prefix}:one")
    batched = wallets_for(redis, f"{key_prefix}:many")
    for wallets, prefix in ((one_by_one, f"{key_prefix}:one"), (batched, f"{key_prefix}:many")):
        await wallets.settle_many(earlier, NOW)
        await count_reports(redis, prefix)
    for each in storm:
        await one_by_one.settle(each, NOW)
        await count_reports(redis, f"{key_prefix}:one")
    await batched.settle_many(storm, NOW)
    await count_reports(redis, f"{key_prefix}:many")

    alone = await books(redis, f"{key_prefix}:one")
    together = await books(redis, f"{key_prefix}:many")
    assert together == alone
    ranked = dict(together[":{w:carol}:earn:all:coins"][1])
    assert len(ranked) == 9
    assert ranked[b"fan0"] == 7 + sum(11 + 13 * i for i in range(0, 30, 9))


async def test_a_batch_larger_than_a_call_is_cut_and_still_counted_once(
    redis: Redis, key_prefix: str
) -> None:
    credits = [credit(f"r{i}", f"s{i % 7}", 3, T0 + i) for i in range(2 * SETTLE_BATCH + 5)]
    wallets = wallets_for(redis, key_prefix)
    outcomes = await wallets.settle_many(credits, NOW)
    # 1.5 diamonds each: 1, or 2 with a half carried from the credit before;
    # which gets which depends on the order the calls reach Redis, the sum not.
    assert set(outcomes) == {1, 2}
    assert sum(outcomes) == 3 * 50 * len(credits) // 100  # type: ignore[arg-type]
    again = await wallets.settle_many(credits, NOW)
    assert again == outcomes
    await count_reports(redis, key_prefix)
    await count_reports(redis, key_prefix)  # counting again counts nothing more
    balances = await wallets.balances("carol")
    assert balances["diamonds"] == 3 * 50 * len(credits) // 100
    assert balances["received"] == 3 * len(credits)
    ledger = await redis.xlen(f"{key_prefix}:{{w:carol}}:ledger")
    assert ledger == len(credits)
    supporters: list[Any] = await redis.zrange(
        f"{key_prefix}:{{w:carol}}:earn:all:coins", 0, -1, withscores=True
    )
    assert sum(score for _, score in supporters) == 3 * len(credits)
    assert len(supporters) == 7


def test_calls_are_cut_by_count_and_by_coins() -> None:
    many = [credit(f"c{i}", "ann", 1, T0) for i in range(SETTLE_BATCH * 2 + 1)]
    sizes = [len(chunk) for chunk in _settle_chunks(list(range(len(many))), many)]
    assert sizes == [SETTLE_BATCH, SETTLE_BATCH, 1]
    # Four credits each holding a third of what a call may sum: two calls.
    rich = [credit(f"c{i}", "ann", SETTLE_BATCH_COINS // 3, T0) for i in range(4)]
    assert list(_settle_chunks([0, 1, 2, 3], rich)) == [[0, 1, 2], [3]]


@pytest.mark.parametrize("problem", ["key count", "coins past 2^53", "damaged carry"])
async def test_a_malformed_call_is_refused_whole(
    redis: Redis, key_prefix: str, problem: str
) -> None:
    scripts = Scripts.register(redis)
    base = f"{key_prefix}:{{w:carol}}"
    gift = ["ann:g", "999999999999999", "50", "ann", "rose", "1", str(T0), "st-1"]
    gifts = 1 if problem == "key count" else 10
    if problem == "damaged carry":
        gift[1] = "3"
        await redis.hset(f"{base}:wallet", "carry_hundredths", "150")
    keys = [f"{base}:wallet", f"{base}:ledger"]
    keys += [f"{base}:settled:ann:g{i}" for i in range(gifts)]
    if problem == "key count":
        keys.append(f"{base}:one-too-many")
    args = [NOW, 60, *(gift * gifts)]
    with pytest.raises(ResponseError, match=r"settle\.lua"):
        await scripts.settle(keys=keys, args=args)
    written = [key async for key in redis.scan_iter(match=f"{key_prefix}:*")]
    if problem == "damaged carry":
        assert await redis.hgetall(f"{base}:wallet") == {b"carry_hundredths": b"150"}
        written.remove(f"{base}:wallet".encode())
    assert written == []


class CountingWallets(Wallets):
    """The real wallets, noting how many credits each settlement round takes."""

    rounds: list[int]
    expected: int
    all_done: asyncio.Event

    async def settle_many(
        self, credits: Sequence[PendingCredit], now_ms: int
    ) -> list[int | Exception]:
        self.rounds.append(len(credits))
        outcomes = await super().settle_many(credits, now_ms)
        if sum(self.rounds) >= self.expected:
            self.all_done.set()
        return outcomes


@pytest.mark.parametrize(
    ("waiting", "expected_rounds"),
    [
        # Keeping up: short calls, so that gifts' calls never wait long behind one.
        (40, [WORKER_BATCH, WORKER_BATCH, 40 - 2 * WORKER_BATCH]),
        # Falling behind: larger calls while that many wait.
        (CATCH_UP_BATCH + 20, [CATCH_UP_BATCH, WORKER_BATCH, 20 - WORKER_BATCH]),
    ],
)
async def test_the_worker_settles_in_short_calls_unless_it_falls_behind(
    redis: Redis, key_prefix: str, waiting: int, expected_rounds: list[int]
) -> None:
    wallets = CountingWallets(redis, Scripts.register(redis), Settings(key_prefix=key_prefix))
    wallets.rounds, wallets.expected, wallets.all_done = [], waiting, asyncio.Event()
    settler = Settler(wallets, sweep_interval=3600, sweep_min_age=60)
    for n in range(waiting):
        settler.submit(credit(f"w{n}", f"s{n}", 10, T0))
    worker = asyncio.create_task(settler.run_worker())
    try:
        await asyncio.wait_for(wallets.all_done.wait(), 10)
    finally:
        worker.cancel()
    assert wallets.rounds == expected_rounds
    assert (await wallets.balances("carol"))["diamonds"] == 5 * waiting
