"""What one settlement sweep costs as the key space grows.

The sweeper (``server/money/settlement.py``) SCANs the whole key space for
outboxes, and the idempotency records keep about three keys per gift for
the TTL (a week by default), so its cost grows with the gifts of the past
week, not with the credits it finds. This starts an embedded Valkey, gives
``--senders`` wallets one young outbox entry each (what a storm leaves at
any moment), then pads the key space with idempotency-like keys and times
one ``sweep_once`` at each size: wall time, this process's CPU and
Valkey's. One JSON line per size.

    .venv/bin/python scripts/bench_sweep.py --keys 0 300000 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from server.money.settlement import Settler
from server.money.wallet import Wallets
from server.ops.embedded import EmbeddedValkey
from server.settings import Settings
from server.store.scripts import Scripts

PREFIX = "gs"
FILL_BATCH = 10_000


async def valkey_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def pad_to(redis: Redis, keys: int) -> None:
    """Add idempotency-like keys (one per fake request) until there are ``keys``."""
    have = int(await redis.dbsize())
    for start in range(have, keys, FILL_BATCH):
        pipe = redis.pipeline(transaction=False)
        for index in range(start, min(keys, start + FILL_BATCH)):
            pipe.set(f"{PREFIX}:{{w:pad{index}}}:req:r", b"1", ex=86_400)
        await pipe.execute()


async def young_outboxes(redis: Redis, senders: int) -> None:
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    for index in range(senders):
        entry = f"carol|10|50|{now_ms}|carol|rose|1"
        pipe.hset(f"{PREFIX}:{{w:s{index:06d}}}:outbox", f"s{index:06d}:r", entry)
    await pipe.execute()


async def measure(sizes: list[int], senders: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as data:
        async with EmbeddedValkey(Path(data), appendfsync="no") as valkey:
            redis = Redis.from_url(valkey.url)
            try:
                wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=PREFIX))
                # Entries younger than an hour are left to the fast path: the
                # sweep reads every outbox and settles none, as in a healthy storm.
                settler = Settler(wallets, sweep_interval=5.0, sweep_min_age=3600.0)
                await young_outboxes(redis, senders)
                for size in sorted(sizes):
                    await pad_to(redis, size)
                    valkey_before, cpu_before = await valkey_cpu(redis), time.process_time()
                    began = time.perf_counter()
                    settled = await settler.sweep_once()
                    rows.append(
                        {
                            "keys": int(await redis.dbsize()),
                            "outboxes": senders,
                            "settled": settled,
                            "sweep_seconds": round(time.perf_counter() - began, 4),
                            "sweeper_cpu_seconds": round(time.process_time() - cpu_before, 4),
                            "valkey_cpu_seconds": round(await valkey_cpu(redis) - valkey_before, 4),
                        }
                    )
            finally:
                await redis.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[0, 300_000, 1_000_000])
    parser.add_argument("--senders", type=int, default=500, help="outboxes with an entry")
    args = parser.parse_args()
    for row in asyncio.run(measure(args.keys, args.senders)):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
