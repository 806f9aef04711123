"""A socket that only looks at a room leaves no key behind for ever.

An anonymous socket may open any room id; the room's epoch, which its
welcome needs, is the one key such a look writes, and it expires unless
viewers keep coming.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from server.core.keys import RoomKeys
from tests.client import RoomClient
from tests.conftest import ServerProcess, StartServer

WEEK = 7 * 24 * 3600  # GIFTSTREAM_IDEMPOTENCY_TTL_SECONDS' default


async def look_at(server: ServerProcess, room: str) -> str:
    client = await RoomClient.open(server.ws, room)
    try:
        welcome = await client.next(lambda message: message["type"] == "welcome")
    finally:
        await client.close()
    return str(welcome["epoch"])


async def test_looking_at_random_rooms_leaves_only_keys_that_expire(
    server: ServerProcess, redis: Redis, key_prefix: str
) -> None:
    rooms = [f"r{uuid.uuid4().hex[:12]}" for _ in range(5)]
    for room in rooms:
        await look_at(server, room)
    written = [key async for key in redis.scan_iter(match=f"{key_prefix}:{{r:r*")]
    epochs = {RoomKeys(key_prefix, room).epoch.encode() for room in rooms}
    assert epochs <= set(written)
    # -1 would be a key with no time to live; -2 one gone since the scan.
    lives = {key: await redis.ttl(key) for key in written}
    assert {key: ttl for key, ttl in lives.items() if ttl == -1} == {}
    assert all(lives[key] <= WEEK for key in epochs)


async def test_each_look_renews_the_epoch_and_keeps_it(
    start_server: StartServer, redis: Redis, key_prefix: str
) -> None:
    server = await start_server(idempotency_ttl_seconds=120)
    epoch_key = RoomKeys(key_prefix, "carol").epoch
    first = await look_at(server, "carol")
    await redis.expire(epoch_key, 5)  # as if the last look were long ago
    assert await look_at(server, "carol") == first
    assert 5 < await redis.ttl(epoch_key) <= 120
