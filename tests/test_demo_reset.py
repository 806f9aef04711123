"""`giftstream serve --demo --reset`: the demo's data, fresh, in one command.

With the embedded Valkey the reset deletes that Valkey's data, never while a
Valkey runs on it; with a Redis URL it deletes the keys under the key prefix
and nothing else; without the --demo flag it deletes nothing at all.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from redis.asyncio import Redis

from server.commands.demo_data import prepare_demo_redis
from server.demo import DEMO_VIEWERS
from server.settings import Settings
from tests.client import Api, RoomClient
from tests.conftest import (
    REPO_ROOT,
    SERVER_START_TIMEOUT,
    ServerProcess,
    server_environment,
    spawn_server,
)

ALICE_SEED = DEMO_VIEWERS["alice"]


async def alice_coins(server: ServerProcess) -> int:
    api = Api(server.http)
    try:
        coins: int = (await api.wallet(await api.token("alice")))["coins"]
        return coins
    finally:
        await api.aclose()


async def alice_sends_roses(server: ServerProcess, count: int) -> int:
    """Her balance after the gift."""
    api = Api(server.http)
    try:
        room = await RoomClient.open(server.ws, "carol", await api.token("alice"))
        await room.of_type("welcome")
        ack = await room.gift("reset-test-1", "rose", count)
        await room.close()
    finally:
        await api.aclose()
    assert ack["type"] == "ack", ack
    balance: int = ack["balance"]
    return balance


async def demo_server(arguments: list[str], data_dir: Path) -> ServerProcess:
    server = await spawn_server(arguments, server_environment(data_dir, {}))
    await server.wait_listening()
    await server.wait_ready()
    return server


def embedded(data_dir: Path, *extra: str) -> list[str]:
    return ["serve", "--port", "0", "--data-dir", str(data_dir), "--demo", *extra]


def stderr_lines(server: ServerProcess) -> list[str]:
    return [line.removeprefix("err| ") for line in server.lines if line.startswith("err| ")]


async def test_reset_brings_the_embedded_demo_back_to_its_seed(tmp_path: Path) -> None:
    first = await demo_server(embedded(tmp_path), tmp_path)
    try:
        assert await alice_sends_roses(first, 5) == ALICE_SEED - 5
    finally:
        assert await first.stop() == 0
    # A plain restart keeps what was spent: the AOF brings it back.
    kept = await demo_server(embedded(tmp_path), tmp_path)
    try:
        assert await alice_coins(kept) == ALICE_SEED - 5
    finally:
        assert await kept.stop() == 0
    fresh = await demo_server(embedded(tmp_path, "--reset"), tmp_path)
    try:
        assert await alice_coins(fresh) == ALICE_SEED
    finally:
        assert await fresh.stop() == 0
    assert "--reset: deleted the demo's data" in fresh.output()


async def test_reset_leaves_a_running_valkeys_data_alone(tmp_path: Path) -> None:
    running = await demo_server(embedded(tmp_path), tmp_path)
    try:
        assert await alice_sends_roses(running, 3) == ALICE_SEED - 3
        second = await spawn_server(embedded(tmp_path, "--reset"), server_environment(tmp_path, {}))
        await asyncio.wait_for(second.process.wait(), SERVER_START_TIMEOUT)
        assert await second.stop() == 1
        last = stderr_lines(second)[-1]
        assert last.startswith(
            f"giftstream: error: --reset: {tmp_path / 'valkey'} is in use by a running Valkey "
            "at redis://:***@127.0.0.1:"
        ), second.output()
        assert "Traceback" not in second.output()
        assert await alice_coins(running) == ALICE_SEED - 3
    finally:
        assert await running.stop() == 0


async def test_reset_on_a_shared_redis_deletes_only_its_prefix(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    # Keys that only look alike: a longer prefix, and the prefix further in.
    neighbours = [f"{key_prefix}x:keep", f"other:{key_prefix}:keep"]
    for key in neighbours:
        await redis.set(key, "1")
    arguments = [
        "serve", "--port", "0", "--redis-url", redis_url, "--key-prefix", key_prefix, "--demo",
    ]  # fmt: skip
    try:
        first = await demo_server(arguments, tmp_path)
        try:
            assert await alice_sends_roses(first, 7) == ALICE_SEED - 7
        finally:
            assert await first.stop() == 0
        fresh = await demo_server([*arguments, "--reset"], tmp_path)
        try:
            assert await alice_coins(fresh) == ALICE_SEED
        finally:
            assert await fresh.stop() == 0
        assert "--reset: deleted the demo's keys" in fresh.output()
        assert await redis.exists(*neighbours) == len(neighbours)
    finally:
        await redis.delete(*neighbours)


async def test_the_prefix_is_matched_literally(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    # A prefix with glob characters in it must not match its look-alikes.
    starred = f"{key_prefix}*"
    mine, other = f"{starred}:wallet", f"{key_prefix}zz:wallet"
    await redis.set(mine, "1")
    await redis.set(other, "1")
    try:
        await prepare_demo_redis(Settings(redis_url=redis_url, key_prefix=starred), reset=True)
        assert (await redis.exists(mine), await redis.exists(other)) == (0, 1)
    finally:
        await redis.delete(mine, other)


async def test_reset_without_the_demo_flag_deletes_nothing(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    precious = f"{key_prefix}:precious"
    await redis.set(precious, "1")
    # The environment's GIFTSTREAM_DEMO=1 (the tests' default) does not count.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--port", "0", "--redis-url", redis_url,
        "--key-prefix", key_prefix, "--reset",
        cwd=REPO_ROOT,
        env=server_environment(tmp_path, {}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), SERVER_START_TIMEOUT)
    assert process.returncode == 2
    assert out == b""
    assert err.decode().splitlines() == [
        "giftstream: error: --reset deletes data, so it is refused without --demo "
        "(a demo's data only)"
    ]
    assert await redis.exists(precious) == 1
