"""The single-node room relay: what it hears, and how it comes back after Redis drops it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.keys import RoomKeys
from server.rooms.relay import Relay
from server.rooms.room_log import pack_event


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    def __call__(self, room: str, event: dict[str, Any]) -> None:
        self.events.append((room, event))
        self.arrived.set()

    async def until(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def relay(redis: Redis, key_prefix: str) -> AsyncIterator[tuple[Relay, Heard]]:
    relay = Relay(redis, key_prefix)
    heard = Heard()
    relay.on_event = heard
    task = asyncio.create_task(relay.run())
    try:
        yield relay, heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.close()


async def publish(redis: Redis, prefix: str, room: str, seq: int, **event: Any) -> int:
    channel = RoomKeys(prefix, room).channel
    receivers: int = await redis.publish(channel, f"{seq}:".encode() + pack_event(event))
    return receivers


async def subscribers(redis: Redis, prefix: str, room: str, expected: int) -> int:
    """The room channel's subscriber count, once it is ``expected`` (or after 5 s)."""
    channel = RoomKeys(prefix, room).channel
    deadline = time.monotonic() + 5
    while (count := int((await redis.pubsub_numsub(channel))[0][1])) != expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    return count


async def until_subscribed(redis: Redis, prefix: str, room: str) -> None:
    assert await subscribers(redis, prefix, room, 1) == 1


async def test_it_hears_the_rooms_it_subscribed_and_only_those(
    relay: tuple[Relay, Heard], redis: Redis, key_prefix: str
) -> None:
    subject, heard = relay
    # Subscribed when it returns (the connection opened on the way): a viewer
    # reading the room's history next can rely on hearing what follows.
    await subject.subscribe("carol")
    assert await publish(redis, key_prefix, "carol", 7, type="gift", gift="rose") == 1
    await publish(redis, key_prefix, "dave", 1, type="gift")  # not subscribed
    await heard.until(1)
    assert heard.events == [("carol", {"type": "gift", "gift": "rose", "seq": 7})]
    await subject.unsubscribe("carol")
    assert await subscribers(redis, key_prefix, "carol", 0) == 0
    await publish(redis, key_prefix, "carol", 8, type="gift")
    await publish(redis, key_prefix, "dave", 9, type="gift")
    await subject.subscribe("dave")
    assert await publish(redis, key_prefix, "dave", 10, type="gift") == 1
    await heard.until(2)
    # Nothing of carol's after she left; dave's from when he was subscribed.
    assert heard.events[1:] == [("dave", {"type": "gift", "seq": 10})]


async def test_an_undecodable_message_is_skipped_not_fatal(
    relay: tuple[Relay, Heard], redis: Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    subject, heard = relay
    await subject.subscribe("carol")
    await until_subscribed(redis, key_prefix, "carol")
    await redis.publish(RoomKeys(key_prefix, "carol").channel, b"not-a-seq:\xc1")
    await publish(redis, key_prefix, "carol", 2, type="gift")
    await heard.until(1)
    assert heard.events == [("carol", {"type": "gift", "seq": 2})]
    assert "undecodable room event" in caplog.text


async def test_after_redis_drops_it_it_reconnects_and_resubscribes(
    relay: tuple[Relay, Heard], redis: Redis, key_prefix: str
) -> None:
    subject, heard = relay
    for room in ("carol", "dave"):
        await subject.subscribe(room)
        await until_subscribed(redis, key_prefix, room)
    killed = await redis.client_kill_filter(_type="pubsub")
    assert killed >= 1
    # Both rooms come back on the new connection, without being asked again.
    for seq, room in enumerate(("carol", "dave"), start=1):
        await until_subscribed(redis, key_prefix, room)
        await publish(redis, key_prefix, room, seq, type="gift")
    await heard.until(2)
    assert sorted(room for room, _ in heard.events) == ["carol", "dave"]


async def test_a_subscription_redis_cannot_confirm_fails_the_join() -> None:
    # Nothing listens on port 1: the viewer joining must hear an error, not
    # sit in a room that hears nothing.
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    subject = Relay(dead, "nowhere")
    with pytest.raises(RedisError):
        await subject.subscribe("carol")
    await subject.close()
    await dead.aclose()
