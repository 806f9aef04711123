"""Earnings reports are counted from the creator's ledger, each credit once.

On the real scripts and the real Valkey: processes racing to count the same
run, the marks that say which creators have credits to count, and a run
longer than one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.earnings_keys import HOUR_MS, EarningsKeys, reports_pending_key
from server.money import reports as reports_module
from server.money.reports import Reports
from server.money.wallet import PendingCredit, Wallets
from server.settings import Settings
from server.store.calls import as_text
from server.store.scripts import Scripts

T0 = 1_767_225_600_000 + 10 * HOUR_MS  # 2026-01-01T10:00:00Z


def credits(n: int, creator: str = "carol") -> list[PendingCredit]:
    return [
        PendingCredit(
            gift_key=f"fan{i % 5}:r{i}",
            sender=f"fan{i % 5}",
            creator=creator,
            coins=10 + i,
            share_percent=50,
            ts_ms=T0 + i,
            room=creator,
            gift="rose",
            count=1,
            stream_id="st-1",
        )
        for i in range(n)
    ]


async def totals(redis: Redis, prefix: str, creator: str = "carol") -> dict[str, int]:
    raw = await redis.hgetall(EarningsKeys(prefix, creator).all_time.totals)
    return {as_text(k): int(v) for k, v in raw.items()}


def reports_for(redis: Redis, prefix: str) -> Reports:
    return Reports(redis, Scripts.register(redis), prefix)


async def test_processes_counting_at_once_count_each_credit_once(
    redis: Redis, key_prefix: str
) -> None:
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=key_prefix))
    paid = credits(40)
    await wallets.settle_many(paid, T0)
    racers = [reports_for(redis, key_prefix) for _ in range(4)]
    counted = await asyncio.gather(*(r.catch_up("carol") for r in racers))
    assert sum(counted) == 40  # whoever counted which run, each credit once
    assert (await totals(redis, key_prefix))["coins"] == sum(c.coins for c in paid)
    assert (await totals(redis, key_prefix))["sends"] == 40
    supporters: list[Any] = await redis.zrange(
        EarningsKeys(key_prefix, "carol").all_time.by_coins, 0, -1, withscores=True
    )
    assert sorted(as_text(s) for s, _ in supporters) == [f"fan{i}" for i in range(5)]


async def test_settling_marks_the_creator_and_one_process_takes_the_mark(
    redis: Redis, key_prefix: str
) -> None:
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=key_prefix))
    await wallets.settle_many(credits(3) + credits(2, creator="dave"), T0)
    pending = reports_pending_key(key_prefix)
    assert await redis.smembers(pending) == {b"carol", b"dave"}

    first, second = reports_for(redis, key_prefix), reports_for(redis, key_prefix)
    assert await first.catch_up_marked() == 5
    assert await second.catch_up_marked() == 0
    assert await redis.smembers(pending) == set()
    assert (await totals(redis, key_prefix, "dave"))["sends"] == 2
    # A creator marked again with nothing new to count costs a look, no write.
    await redis.sadd(pending, "carol")
    assert await second.catch_up_marked() == 0


async def test_a_backlog_longer_than_a_run_is_counted_in_runs(
    redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports_module, "RUN_ENTRIES", 7)
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=key_prefix))
    paid = credits(30)
    await wallets.settle_many(paid, T0)
    reports = reports_for(redis, key_prefix)
    assert await reports.catch_up("carol") == 30
    assert (await totals(redis, key_prefix))["coins"] == sum(c.coins for c in paid)
    # The cursor stands at the ledger's last entry: nothing is counted twice.
    last = await redis.xrevrange(f"{key_prefix}:{{w:carol}}:ledger", count=1)
    assert last
    assert await redis.get(EarningsKeys(key_prefix, "carol").cursor) == last[0][0]
    assert await reports.catch_up("carol") == 0


async def test_a_run_left_half_written_is_finished_by_the_next_process_exactly(
    redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's sums go out in chunks; a process that dies between two leaves
    the run's progress, and whoever counts next goes on from the chunk it
    names, with the same sums: the reports end as if counted in one go."""
    monkeypatch.setattr(reports_module, "CHUNK_OPS", 5)
    paid = credits(12)
    for prefix in (f"{key_prefix}:whole", f"{key_prefix}:cut"):
        wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=prefix))
        await wallets.settle_many(paid, T0)

    await reports_for(redis, f"{key_prefix}:whole").catch_up("carol")

    scripts = Scripts.register(redis)
    calls: list[int] = []

    def dies_after_two_chunks(keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        calls.append(int(args[3]))  # the run's number of chunks
        if len(calls) > 2:
            raise ConnectionError("the process died")
        return scripts.report(keys=keys, args=args)

    cut = Reports(redis, replace(scripts, report=dies_after_two_chunks), f"{key_prefix}:cut")
    with pytest.raises(ConnectionError):
        await cut.catch_up("carol")
    assert calls[0] > 2  # more chunks than were written
    keys = EarningsKeys(f"{key_prefix}:cut", "carol")
    assert await redis.get(keys.cursor) is None  # the run is not counted yet...
    assert as_text(await redis.get(keys.run)).split("|")[1] == "2"  # ...two chunks of it are

    assert await reports_for(redis, f"{key_prefix}:cut").catch_up("carol") == 12
    assert await redis.exists(keys.run) == 0
    whole = EarningsKeys(f"{key_prefix}:whole", "carol")
    for a_keys, b_keys in (
        (whole.all_time, keys.all_time),
        (whole.stream("st-1"), keys.stream("st-1")),
    ):
        assert await redis.exists(a_keys.totals)
        for name in ("", ":coins", ":diamonds"):
            a = a_keys.totals + name
            b = b_keys.totals + name
            kind = as_text(await redis.type(a))
            if kind == "hash":
                assert await redis.hgetall(a) == await redis.hgetall(b), a
            else:
                assert await redis.zrange(a, 0, -1, withscores=True) == await redis.zrange(
                    b, 0, -1, withscores=True
                ), a
