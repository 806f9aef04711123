"""``giftstream reconcile``: check the books of a running deployment."""

from __future__ import annotations

import argparse
import asyncio
import json

from redis.exceptions import RedisClusterException, RedisError

from server import settings as settings_module
from server.commands.banner import hide_password
from server.commands.errors import say_error
from server.money import reconcile
from server.ops.embedded import running_url
from server.settings import Settings, SettingsError
from server.store.redis_client import WrongRedisMode, check_mode, connect


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings from the environment, with the Redis flags over them."""
    return settings_module.from_environment().with_overrides(
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        data_dir=args.data_dir,
        key_prefix=args.key_prefix,
    )


def redis_url_for(settings: Settings) -> str | None:
    """The configured Redis, or the embedded Valkey a running server holds."""
    embedded = "cluster/node-0" if settings.redis_cluster else "valkey"
    return settings.redis_url or running_url(settings.data_dir / embedded)


def redis_target(args: argparse.Namespace, doing: str) -> tuple[Settings, str] | None:
    """The settings and the Redis URL a command reads, or None once it has
    said why there are none (``doing``: what it would read Redis for)."""
    try:
        settings = settings_for(args)
    except SettingsError as exc:
        say_error(str(exc))
        return None
    url = redis_url_for(settings)
    if url is None:
        say_error(
            f"no Redis to {doing}: set REDIS_URL (or --redis-url), "
            "or start `giftstream serve` with its embedded Valkey first"
        )
        return None
    return settings, url


def reconcile_command(args: argparse.Namespace) -> int:
    target = redis_target(args, "check")
    if target is None:
        return 2
    settings, url = target
    try:
        report = asyncio.run(_reconcile(url, settings, args.settled))
    except WrongRedisMode as exc:
        say_error(str(exc))
        return 2
    except (RedisError, RedisClusterException, OSError) as exc:
        say_error(f"cannot read Redis at {hide_password(url)}: {exc}")
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    return 0 if report.clean else 1


async def _reconcile(url: str, settings: Settings, settled: bool) -> reconcile.Report:
    client = connect(url, cluster=settings.redis_cluster, pool_size=2)
    try:
        # A single-node client on a cluster would check one node and call it clean.
        await check_mode(client, cluster=settings.redis_cluster)
        return await reconcile.check(client, settings.key_prefix, expect_settled=settled)
    finally:
        await client.aclose()
