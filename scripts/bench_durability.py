"""What zero-loss durability costs: the gift script under each AOF fsync policy.

Starts one embedded Valkey per policy (appendfsync always / everysec / no),
each in a temporary directory, and drives the real gift script
(`server/store/lua/gift.lua`, through `server.money.wallet.Wallets`) from many
concurrent callers for a fixed time. Prints gifts per second for each policy
and its ratio to `no` (no fsync at all) measured in the same run, so a noisy
machine shows up in all three figures alike.

    .venv/bin/python scripts/bench_durability.py --seconds 5 --callers 50
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis

from server.core.catalog import load_catalog
from server.money.wallet import GiftOrder, Wallets
from server.ops.embedded import EmbeddedValkey
from server.settings import Settings
from server.store.scripts import Scripts

POLICIES = ("no", "everysec", "always")


async def gifts_per_second(url: str, seconds: float, callers: int) -> float:
    pool = BlockingConnectionPool.from_url(url, max_connections=callers)
    redis = Redis.from_pool(pool)
    unlimited = Settings(
        key_prefix="bench", user_gift_rate_per_second=1e9, user_gift_rate_burst=10**9
    )
    wallets = Wallets(redis, Scripts.register(redis), unlimited)
    rose = load_catalog().gift("rose")
    now_ms = int(time.time() * 1000)
    for caller in range(callers):
        await wallets.grant_coins(f"viewer{caller}", 10**8, reason="bench", now_ms=now_ms)
    done = 0
    deadline = time.monotonic() + seconds

    async def caller_loop(caller: int) -> None:
        nonlocal done
        sent = 0
        while time.monotonic() < deadline:
            await wallets.send_gift(
                GiftOrder(f"viewer{caller}", f"r{sent}", rose, 1, "carol", "carol", now_ms)
            )
            sent += 1
        done += sent

    started = time.monotonic()
    await asyncio.gather(*(caller_loop(c) for c in range(callers)))
    elapsed = time.monotonic() - started
    await redis.aclose()
    return done / elapsed


async def main(seconds: float, callers: int) -> None:
    rates: dict[str, float] = {}
    for policy in POLICIES:
        with tempfile.TemporaryDirectory() as data_dir:
            async with EmbeddedValkey(Path(data_dir), appendfsync=policy) as valkey:
                rates[policy] = await gifts_per_second(valkey.url, seconds, callers)
    print(
        f"gift script, {callers} concurrent callers, {seconds:g} s each, "
        f"{platform.machine()} {platform.node()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"{'appendfsync':<12} {'gifts/s':>10} {'vs no fsync':>12}")
    for policy in POLICIES:
        print(f"{policy:<12} {rates[policy]:>10,.0f} {rates[policy] / rates['no']:>12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--callers", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.callers))
