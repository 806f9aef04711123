"""``giftstream ledger export FILE`` and ``giftstream ledger verify FILE``.

Export reads every wallet's ledger from Redis into a file of JSON lines;
verify checks such a file with no Redis at all: each wallet's hash chain,
and every balance recomputed from the entries (``server/core/ledger_chain.py``).
An auditor keeps the export, or just the wallets' chain heads, and can show
later that no entry was edited, removed, added or moved since.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from redis.exceptions import RedisClusterException, RedisError

from server.commands.banner import hide_password
from server.commands.errors import say_error
from server.commands.reconcile import redis_target
from server.core import ledger_chain
from server.money.ledger_export import Exported, LedgerBusy, export
from server.settings import Settings
from server.store.redis_client import WrongRedisMode, check_mode, connect


def ledger_command(args: argparse.Namespace) -> int:
    if args.ledger_command == "verify":
        return _verify(args.file, args.json)
    return _export(args)


def _verify(path: Path, as_json: bool) -> int:
    try:
        with path.open(encoding="utf-8") as lines:
            verdict = ledger_chain.verify(lines)
    except (OSError, UnicodeDecodeError) as exc:
        say_error(f"cannot read {path}: {exc}")
        return 2
    print(json.dumps(verdict.to_dict(), indent=2) if as_json else verdict.describe())
    return 0 if verdict.intact else 1


def _export(args: argparse.Namespace) -> int:
    target = redis_target(args, "export from")
    if target is None:
        return 2
    settings, url = target
    path: Path = args.file
    partial = path.with_name(path.name + ".partial")
    try:
        exported = asyncio.run(_write(url, settings, partial))
    except (WrongRedisMode, LedgerBusy) as exc:
        partial.unlink(missing_ok=True)
        say_error(str(exc))
        return 2
    except (RedisError, RedisClusterException) as exc:
        partial.unlink(missing_ok=True)
        say_error(f"cannot read Redis at {hide_password(url)}: {exc}")
        return 2
    except OSError as exc:
        partial.unlink(missing_ok=True)
        say_error(f"cannot write {path}: {exc}")
        return 2
    # Whole or not at all: a file cut short by a failure would fail verify.
    os.replace(partial, path)
    print(f"exported {exported.entries:,} entries of {exported.wallets:,} wallets to {path}")
    return 0


async def _write(url: str, settings: Settings, path: Path) -> Exported:
    client = connect(url, cluster=settings.redis_cluster, pool_size=2)
    try:
        await check_mode(client, cluster=settings.redis_cluster)
        with path.open("w", encoding="utf-8") as out:
            return await export(client, settings.key_prefix, out.write, int(time.time() * 1000))
    finally:
        await client.aclose()
