"""Combos: one per sender, room and gift, counted in Redis, and always ended.

The first tests run the real scripts on the real Valkey: ``room_gifts.lua``
(one node) and ``room_event.lua`` (a cluster's path) count a combo as they
number the gift's event, and ``combo_end.lua`` ends it once its window has
passed, whichever process asks. The last ones run real servers: two sockets
of one user share a combo, a socket's close does not end it, and a combo
whose process was killed is ended by another process.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.catalog import Gift, Tier
from server.errors import InsufficientCoins
from server.money.room_gifts import RoomGifts, SentGift
from server.money.wallet import GiftOrder, Wallets
from server.rooms.combo_ends import ComboEnds
from server.rooms.room_log import ComboHit, RoomLog, gift_payload
from server.settings import Settings
from server.store.calls import as_text
from server.store.scripts import Scripts
from server.tuning.pipelining import AutoPipeline
from tests.client import Api, RoomClient, funded_sender

WINDOW = 3000
TIMEOUT = 10_000
ROSE = Gift(id="rose", name="Rose", coins=1, tier=Tier.SMALL, streakable=True)
HEART = Gift(id="heart", name="Heart", coins=1, tier=Tier.SMALL, streakable=True)
CORGI = Gift(id="corgi", name="Corgi", coins=5, tier=Tier.LARGE, streakable=False)
T0 = 1_767_225_600_000
ROOM = "stage"


class Parts:
    """A process's money and room parts, on one node (script batching on)."""

    def __init__(self, redis: Redis, key_prefix: str, process_id: str = "p-one") -> None:
        self.redis = redis
        self.settings = Settings(key_prefix=key_prefix, combo_window_ms=WINDOW)
        self.pipeline = AutoPipeline(redis)
        scripts = Scripts.register(redis, self.pipeline)
        self.wallets = Wallets(redis, scripts, self.settings, self.pipeline)
        self.room_log = RoomLog(redis, scripts, self.settings, self.pipeline)
        self.gifts = RoomGifts(self.wallets, self.room_log, scripts, self.pipeline)
        self.combo_ends = ComboEnds(
            redis,
            self.pipeline,
            scripts.combo_end,
            self.room_log,
            key_prefix,
            process_id,
            WINDOW,
            TIMEOUT,
        )

    async def send(
        self, sender: str, request_id: str, now: int, count: int = 1, gift: Gift = ROSE
    ) -> SentGift:
        event = {"type": "gift", "sender": sender, "gift": gift.id, "count": count, "combo": None}
        order = GiftOrder(sender, request_id, gift, count, ROOM, ROOM, now)
        if gift.streakable:
            self.combo_ends.expect(ROOM, sender, gift.id, now)
        return await self.gifts.send(order, gift_payload(event, gift.streakable))

    async def events(self) -> list[dict[str, Any]]:
        return (await self.room_log.view(ROOM, 0)).missed


@pytest.fixture
async def parts(redis: Redis, key_prefix: str) -> Any:
    made = Parts(redis, key_prefix)
    for sender in ("alice", "bob"):
        await made.wallets.grant_coins(sender, 100, "welcome", T0)
    yield made
    await made.pipeline.close()


def shown(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (type, sender, gift, combo count or final count)."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if event["type"] == "combo_end":
            out.append(("end", event["sender"], event["gift"], event["count"]))
        else:
            combo = event["combo"]
            out.append(("gift", event["sender"], event["gift"], combo and combo["count"]))
    return out


async def test_gifts_within_the_window_continue_one_combo(parts: Parts) -> None:
    # The third comes exactly one window after the second: still the same run.
    for n, now in enumerate((T0, T0 + 2000, T0 + 2000 + WINDOW)):
        await parts.send("alice", f"r{n}", now, count=2)
    events = await parts.events()
    assert [combo_count for *_, combo_count in shown(events)] == [2, 4, 6]
    assert len({event["combo"]["id"] for event in events}) == 1


async def test_a_gift_after_the_window_ends_the_old_combo_first(parts: Parts) -> None:
    await parts.send("alice", "r1", T0, count=3)
    await parts.send("alice", "r2", T0 + WINDOW + 1)
    first, end, second = await parts.events()
    assert shown([first, end, second]) == [
        ("gift", "alice", "rose", 3),
        ("end", "alice", "rose", 3),
        ("gift", "alice", "rose", 1),
    ]
    assert end["combo"] == first["combo"]["id"] != second["combo"]["id"]
    assert (end["room"], end["ts"], end["stream_id"]) == (ROOM, T0 + WINDOW + 1, None)
    assert [event["seq"] for event in (first, end, second)] == [1, 2, 3]


async def test_senders_and_gifts_have_combos_of_their_own_in_one_call(parts: Parts) -> None:
    calls = parts.pipeline.calls
    await asyncio.gather(
        parts.send("alice", "a1", T0),
        parts.send("bob", "b1", T0),
        parts.send("alice", "a2", T0 + 1, gift=HEART),
        parts.send("alice", "a3", T0 + 2),
        parts.send("bob", "b2", T0 + 3, gift=CORGI),
        parts.send("bob", "b3", T0 + 4, count=4),
    )
    # One call for the room's gifts, and the room noted as where combos are.
    assert parts.pipeline.calls - calls == 2
    events = await parts.events()
    assert shown(events) == [
        ("gift", "alice", "rose", 1),
        ("gift", "bob", "rose", 1),
        ("gift", "alice", "heart", 1),
        ("gift", "alice", "rose", 2),
        ("gift", "bob", "corgi", None),
        ("gift", "bob", "rose", 5),
    ]
    ids = {(e["sender"], e["gift"]): e["combo"]["id"] for e in events if e["combo"]}
    assert len(set(ids.values())) == 3


async def test_only_gifts_paid_now_count(parts: Parts) -> None:
    await parts.send("alice", "r1", T0)
    retry = await parts.send("alice", "r1", T0 + 10)
    assert retry.outcome.duplicate
    with pytest.raises(InsufficientCoins):
        await parts.send("alice", "too-much", T0 + 20, count=500)
    await parts.send("alice", "r2", T0 + 30, count=2)
    assert shown(await parts.events()) == [
        ("gift", "alice", "rose", 1),
        ("gift", "alice", "rose", 3),
    ]


async def test_a_clock_behind_does_not_move_a_combo_back(parts: Parts, redis: Redis) -> None:
    await parts.send("alice", "r1", T0 + 2000)
    await parts.send("alice", "r2", T0)  # a process whose clock is 2 s behind
    stored = await redis.hget(parts.room_log.keys(ROOM).combos, "alice rose")
    assert stored is not None
    _, count, last, stream = as_text(stored).split(" ")
    assert (count, last, stream) == ("2", str(T0 + 2000), "")


async def test_a_combo_ends_once_its_window_has_passed_and_only_once(
    parts: Parts, redis: Redis
) -> None:
    await parts.send("alice", "r1", T0, count=5)
    await parts.send("bob", "b1", T0 + 1000)
    # Not yet: the window has not passed (it passes 1 ms after it ends).
    assert await parts.combo_ends.end_lapsed(ROOM, ["alice rose"], T0 + WINDOW) == {
        "alice rose": T0 + WINDOW + 1
    }
    ended = await parts.combo_ends.end_lapsed(ROOM, None, T0 + WINDOW + 1)
    assert ended == {"bob rose": T0 + 1000 + WINDOW + 1}
    # Asked again (another process), or for a combo never open: nothing more.
    assert await parts.combo_ends.end_lapsed(ROOM, ["alice rose", "nobody rose"], T0 + 9000) == {}
    assert await parts.combo_ends.end_lapsed(ROOM, None, T0 + 9000) == {}
    assert shown((await parts.events())[2:]) == [
        ("end", "alice", "rose", 5),
        ("end", "bob", "rose", 1),
    ]
    assert await redis.hlen(parts.room_log.keys(ROOM).combos) == 0


async def test_the_cluster_path_counts_combos_as_it_numbers_events(
    redis: Redis, key_prefix: str
) -> None:
    # Without batching: room_event.lua, one call an event, as on a cluster.
    settings = Settings(key_prefix=key_prefix, combo_window_ms=WINDOW)
    room_log = RoomLog(redis, Scripts.register(redis), settings)

    async def publish(key: str, now: int, count: int = 1) -> tuple[int, bool]:
        event = {"type": "gift", "sender": "carl", "gift": "rose", "count": count, "combo": None}
        return await room_log.publish(
            ROOM, key, event, ComboHit("carl", "rose", count, now, "st-1")
        )

    assert await publish("carl:1", T0, count=2) == (1, True)
    assert await publish("carl:1", T0 + 5) == (1, False)  # a retry: not counted again
    await publish("carl:2", T0 + 10)
    await publish("carl:3", T0 + 10 + WINDOW + 1)
    events = (await room_log.view(ROOM, 0)).missed
    assert shown(events) == [
        ("gift", "carl", "rose", 2),
        ("gift", "carl", "rose", 3),
        ("end", "carl", "rose", 3),
        ("gift", "carl", "rose", 1),
    ]
    assert events[2]["stream_id"] == "st-1"


async def test_a_dead_process_combos_are_ended_by_another(redis: Redis, key_prefix: str) -> None:
    doomed = Parts(redis, key_prefix, "p-doomed")
    survivor = Parts(redis, key_prefix, "p-survivor")
    await doomed.wallets.grant_coins("alice", 10, "welcome", T0)
    await doomed.combo_ends.beat(T0)
    await doomed.send("alice", "r1", T0)
    # The doomed process dies here: nobody asks for its deadline.
    await survivor.combo_ends.beat(T0 + TIMEOUT)  # silent, but not long enough
    assert shown(await doomed.events()) == [("gift", "alice", "rose", 1)]
    await survivor.combo_ends.beat(T0 + TIMEOUT + 1)
    assert shown(await doomed.events())[1:] == [("end", "alice", "rose", 1)]
    # Forgotten once its combos are ended: nothing is ended twice.
    owners = await redis.zrange(f"{key_prefix}:combos:owners", 0, -1)
    assert [as_text(owner) for owner in owners] == ["p-survivor"]
    await survivor.combo_ends.beat(T0 + 3 * TIMEOUT)
    assert len(await doomed.events()) == 2
    await doomed.pipeline.close()
    await survivor.pipeline.close()


# ------------------------------------------------------------- real servers


async def test_two_sockets_of_one_sender_share_a_combo_that_outlives_them(
    fast_streaks: Any,
) -> None:
    api = Api(fast_streaks.http)
    first = await funded_sender(fast_streaks.ws, api, "two-tabs")
    second = await RoomClient.open(fast_streaks.ws, "carol", await api.token("two-tabs"))
    watcher = await RoomClient.open(fast_streaks.ws, "carol")
    await watcher.of_type("welcome")
    assert (await first.gift("t-1", "rose", 2))["type"] == "ack"
    assert (await second.gift("t-2", "rose", 3))["type"] == "ack"
    await first.close()
    await second.close()
    one, two = await watcher.of_type("gift"), await watcher.of_type("gift")
    assert one["combo"]["id"] == two["combo"]["id"]
    assert (one["combo"]["count"], two["combo"]["count"]) == (2, 5)
    # Both sockets closed, the combo still ends once, with the total.
    end = await watcher.of_type("combo_end", within=5)
    assert (end["combo"], end["count"]) == (one["combo"]["id"], 5)
    assert [m for m in await watcher.drain(1.0) if m["type"] == "combo_end"] == []
    await watcher.close()
    await api.aclose()


async def test_a_combo_whose_process_was_killed_is_ended_by_another(
    start_server: Any,
) -> None:
    settings = {"combo_window_ms": 400, "combo_owner_timeout_seconds": 1.5}
    doomed = await start_server(**settings)
    survivor = await start_server(**settings)
    # HTTP through the survivor: a connection kept to the doomed one would break.
    api = Api(survivor.http)
    sender = await funded_sender(doomed.ws, api, "orphan")
    watcher = await RoomClient.open(survivor.ws, "carol")
    await watcher.of_type("welcome")
    # Only the doomed process counted the combo, and it dies within the window.
    assert (await sender.gift("k-1", "rose", 1))["type"] == "ack"
    assert (await sender.gift("k-2", "rose", 4))["type"] == "ack"
    await sender.close()  # which does not end the combo
    await doomed.stop(signal.SIGKILL)
    gifts = [await watcher.of_type("gift"), await watcher.of_type("gift")]
    assert [g["combo"]["count"] for g in gifts] == [1, 5]
    end = await watcher.of_type("combo_end", within=8)
    assert (end["combo"], end["count"], end["sender"]) == (gifts[0]["combo"]["id"], 5, "orphan")
    assert [m for m in await watcher.drain(1.0) if m["type"] == "combo_end"] == []
    await watcher.close()
    await api.aclose()
