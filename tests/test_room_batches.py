"""A room's events made together share one room_event.lua call, and each is still itself."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis

from server.rooms.room_log import RoomLog, event_payload, unpack_published_all
from server.settings import Settings
from server.store.scripts import Scripts, source
from server.tuning.pipelining import AutoPipeline


async def subscribed(redis: Redis, channel: str) -> Any:
    """A pub/sub connection listening to ``channel`` once Redis has said so:
    a message published before Redis takes the SUBSCRIBE would be missed."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel)
    confirmed = await pubsub.get_message(timeout=5.0)
    assert confirmed is not None
    assert confirmed["type"] == "subscribe", confirmed
    return pubsub


async def messages(pubsub: Any, count: int, within: float = 5.0) -> list[dict[str, Any]]:
    """The next ``count`` events on the channel (a message may hold several)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                got.extend(unpack_published_all(message["data"]))
    return got


async def test_events_of_a_room_made_together_are_one_call_numbered_in_order_once_each(
    redis: Redis, key_prefix: str
) -> None:
    pipeline = AutoPipeline(redis)
    log = RoomLog(
        redis, Scripts.register(redis, pipeline), Settings(key_prefix=key_prefix), pipeline
    )
    # Loaded already, so that no call is counted twice for a NOSCRIPT retry.
    await redis.script_load(source("room_event"))
    pubsub = await subscribed(redis, log.keys("busy").channel)
    keys = [f"gift-{n}" for n in range(100)] + ["gift-7"]  # the last: a retry, same key
    results = await asyncio.gather(
        *(log.publish("busy", key, {"type": "gift", "n": n}) for n, key in enumerate(keys)),
        log.publish("other", "gift-0", {"type": "gift", "n": -1}),
    )
    assert list(results[:100]) == [(seq, True) for seq in range(1, 101)]
    assert results[100] == (8, False)  # the retry gets the first one's seq, published once
    assert results[101] == (1, True)  # another room keeps its own numbers
    assert pipeline.calls == 2  # one script call per room, not one per event
    heard = await messages(pubsub, 100)
    assert [(e["seq"], e["n"]) for e in heard] == [(n + 1, n) for n in range(100)]
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    # The history a resuming viewer reads has each of them once too.
    view = await log.view("busy", 0)
    assert [e["seq"] for e in view.missed] == list(range(1, 101))
    await pubsub.aclose()
    await pipeline.close()


async def test_a_failed_call_fails_every_event_of_its_batch(redis: Redis, key_prefix: str) -> None:
    pipeline = AutoPipeline(redis)
    log = RoomLog(
        redis, Scripts.register(redis, pipeline), Settings(key_prefix=key_prefix), pipeline
    )
    await redis.set(log.keys("broken").seq, "not a number")  # INCR fails inside the script
    results = await asyncio.gather(
        *(log.publish("broken", f"k{n}", {"type": "gift"}) for n in range(3)),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["Unavailable"] * 3
    await pipeline.close()


def test_a_message_of_several_events_numbers_them_from_its_first_seq() -> None:
    first = event_payload({"type": "gift", "seq": 99, "sender": "a"})
    second = event_payload({"type": "gift", "sender": "b"})
    events = unpack_published_all(b"41:" + first + second)
    assert [(event["seq"], event["sender"]) for event in events] == [(41, "a"), (42, "b")]
    # One event is the same format room_event.lua publishes.
    assert unpack_published_all(b"7:" + second) == [{"type": "gift", "sender": "b", "seq": 7}]


@pytest.mark.parametrize(
    "message", [b"3:", b"3:" + msgpack.packb([1, 2]), b"x:" + msgpack.packb({})]
)
def test_a_message_that_is_not_events_is_refused(message: bytes) -> None:
    with pytest.raises(ValueError, match=r"event|invalid literal"):
        unpack_published_all(message)
