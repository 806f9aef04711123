"""A demo's Redis made ready: ``--reset`` wipes only a demo's data, then it is seeded."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from server.commands.banner import hide_password
from server.commands.errors import ServeError
from server.ops.embedded import LOCK_NAME, running_url
from server.settings import Settings
from server.store.redis_client import WrongRedisMode, check_mode, connect

log = logging.getLogger(__name__)

# What an embedded Valkey keeps its data in: the AOF, and an RDB file that
# Valkey would load in its place were the AOF missing. Its log and the lock
# stay (server/ops/embedded.py).
VALKEY_DATA = ("appendonlydir", "dump.rdb")
RESET_BATCH = 500


def wipe_embedded_data(valkey_dir: Path) -> bool:
    """Delete the embedded Valkey's data in ``valkey_dir``; whether there was any.

    Done under the directory's lock, the one ``EmbeddedValkey`` takes and
    shares with its valkey-server: while a Valkey runs there, even one whose
    server was killed, the lock is held and nothing is touched.
    """
    if not valkey_dir.is_dir():
        return False
    fd = os.open(valkey_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            url = running_url(valkey_dir)
            where = hide_password(url) if url else ""
            holder = f"a running Valkey at {where}" if url else "a Valkey that is starting"
            raise ServeError(
                f"--reset: {valkey_dir} is in use by {holder}; "
                "stop the server that runs it, then start again with --reset"
            ) from None
        found = False
        for name in VALKEY_DATA:
            path = valkey_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
            found = True
        return found
    finally:
        # Closing the descriptor lets go of the lock.
        os.close(fd)


def _globescape_percent(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


async def prepare_demo_redis(settings: Settings, *, reset: bool) -> None:
    """Check that the demo's Redis answers (it seeds at once), and wipe its keys on ``reset``.

    Only keys under the key prefix are deleted: a Redis reached by URL may
    hold other data, under other prefixes.
    """
    url = settings.redis_url or ""
    client = connect(url, cluster=settings.redis_cluster, pool_size=2)
    try:
        await check_mode(client, cluster=settings.redis_cluster)
        if reset:
            deleted = await _delete_prefixed(client, settings.key_prefix)
            log.info(
                "--reset: deleted the demo's keys",
                extra={"keys": deleted, "prefix": settings.key_prefix, "redis": hide_password(url)},
            )
    except WrongRedisMode as exc:
        raise ServeError(str(exc)) from exc
    except (RedisError, RedisClusterException, OSError) as exc:
        raise ServeError(f"cannot reach Redis at {hide_password(url)}: {exc}") from exc
    finally:
        await client.aclose()


async def _delete_prefixed(client: Redis, prefix: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{_globescape_percent(prefix)}:*", count=1000):
        batch.append(key)
        if len(batch) >= RESET_BATCH:
            deleted += await client.unlink(*batch)
            batch = []
    if batch:
        deleted += await client.unlink(*batch)
    return deleted
