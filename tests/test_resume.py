"""Resume after a reconnect: exactly the missed events, to any process, or a clear resync.

Room events here are numbered and published by the real ``room_event.lua``
(through ``RoomLog.publish``), so they land in the room's history exactly as
gifts' events do; one test also sends real gifts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.client.frames import Message
from server.rooms.room_log import RoomLog
from server.settings import Settings
from server.store.scripts import Scripts
from tests.client import Api, RoomClient


def room_log(redis: Redis, prefix: str) -> RoomLog:
    return RoomLog(redis, Scripts.register(redis), Settings(key_prefix=prefix))


async def publish(log: RoomLog, room: str, first: int, last: int) -> None:
    """Events named n = first..last, each once (as a gift's event would be)."""
    for n in range(first, last + 1):
        event = {"type": "gift", "room": room, "sender": "storm", "gift": "rose", "n": n}
        await log.publish(room, f"storm:{n}", event)


async def gift_seqs(client: RoomClient, count: int, within: float = 10.0) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        event = await client.of_type("gift", within=within)
        seqs.append(event["seq"])
    return seqs


def seqs_of(messages: list[Message]) -> list[int]:
    return [m["seq"] for m in messages if m.get("type") == "gift"]


async def test_a_viewer_gets_exactly_what_it_missed(server: Any, redis: Redis) -> None:
    log = room_log(redis, server.key_prefix)
    viewer = await RoomClient.open(server.ws, "replayed")
    first = await viewer.of_type("welcome")
    assert first["resume"] is None
    assert first["epoch"]
    await publish(log, "replayed", 1, 5)
    assert await gift_seqs(viewer, 5) == [1, 2, 3, 4, 5]
    await viewer.close()

    await publish(log, "replayed", 6, 12)
    query = {"since": "5", "epoch": first["epoch"]}
    back = await RoomClient.open(server.ws, "replayed", query=query)
    welcome = await back.of_type("welcome")
    assert welcome["resume"] == {"status": "ok", "replayed": 7}
    assert welcome["last_seq"] == 12
    assert welcome["epoch"] == first["epoch"]
    replayed = [await back.of_type("gift") for _ in range(7)]
    assert [e["seq"] for e in replayed] == list(range(6, 13))
    assert [e["n"] for e in replayed] == list(range(6, 13))

    await publish(log, "replayed", 13, 13)
    assert await gift_seqs(back, 1) == [13]
    assert seqs_of(await back.drain()) == []
    await back.close()


async def test_a_viewer_that_missed_nothing_gets_nothing(server: Any, redis: Redis) -> None:
    log = room_log(redis, server.key_prefix)
    await publish(log, "quiet", 1, 3)
    viewer = await RoomClient.open(server.ws, "quiet", query={"since": "3"})
    welcome = await viewer.of_type("welcome")
    assert welcome["resume"] == {"status": "ok", "replayed": 0}
    assert seqs_of(await viewer.drain()) == []
    await viewer.close()


async def test_too_far_behind_is_told_to_resync(start_server: Any, redis: Redis) -> None:
    server = await start_server(room_history_length=10)
    log = room_log(redis, server.key_prefix)
    await publish(log, "long", 1, 30)
    viewer = await RoomClient.open(server.ws, "long", query={"since": "5"})
    welcome = await viewer.of_type("welcome")
    assert welcome["resume"] == {"status": "resync", "reason": "too_far_behind"}
    assert welcome["last_seq"] == 30
    assert seqs_of(await viewer.drain()) == []
    # Live events continue after a resync.
    await publish(log, "long", 31, 31)
    assert await gift_seqs(viewer, 1) == [31]
    await viewer.close()

    # Within reach of the history: replayed.
    near = await RoomClient.open(server.ws, "long", query={"since": "25"})
    assert (await near.of_type("welcome"))["resume"] == {"status": "ok", "replayed": 6}
    assert await gift_seqs(near, 6) == list(range(26, 32))
    await near.close()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"since": "1", "epoch": "123"}, "epoch_changed"),  # another run of the sequence
        ({"since": "50"}, "epoch_changed"),  # beyond the last seq: the data was reset
    ],
)
async def test_a_stale_position_is_told_to_resync(
    server: Any, redis: Redis, query: dict[str, str], reason: str
) -> None:
    log = room_log(redis, server.key_prefix)
    await publish(log, "reset", 1, 4)
    viewer = await RoomClient.open(server.ws, "reset", query=query)
    welcome = await viewer.of_type("welcome")
    assert welcome["resume"] == {"status": "resync", "reason": reason}
    assert seqs_of(await viewer.drain()) == []
    await viewer.close()


async def test_the_epoch_changes_when_the_log_is_lost(server: Any, redis: Redis) -> None:
    log = room_log(redis, server.key_prefix)
    await publish(log, "wiped", 1, 2)
    viewer = await RoomClient.open(server.ws, "wiped")
    before = (await viewer.of_type("welcome"))["epoch"]
    await viewer.close()
    keys = log.keys("wiped")
    await redis.delete(keys.seq, keys.history, keys.epoch)  # the room's log is lost
    await asyncio.sleep(0.01)  # epochs are named by the microsecond
    await publish(log, "wiped", 1, 3)
    query = {"since": "2", "epoch": before}
    back = await RoomClient.open(server.ws, "wiped", query=query)
    welcome = await back.of_type("welcome")
    assert welcome["epoch"] != before
    assert welcome["resume"] == {"status": "resync", "reason": "epoch_changed"}
    await back.close()


async def test_a_malformed_position_is_refused_before_the_socket_opens(server: Any) -> None:
    for query in ["since=-1", "since=abc", "since=1&epoch=x1", "since=" + "9" * 16]:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.ws}/ws/rooms/carol?{query}")
        assert refused.value.response.status_code == 400, query
        assert b"bad_field" in refused.value.response.body


async def test_moved_to_another_process_mid_storm_misses_nothing(
    server: Any, second_server: Any, redis: Redis
) -> None:
    """The storm goes on while the viewer leaves one process and joins the other."""
    log = room_log(redis, server.key_prefix)
    total = 1500
    viewer = await RoomClient.open(server.ws, "storm", max_size=None)
    epoch = (await viewer.of_type("welcome"))["epoch"]
    storm = asyncio.create_task(publish(log, "storm", 1, total))
    seen = await gift_seqs(viewer, 300)
    # Gone without a goodbye; what it had read but not looked at is lost too.
    viewer.socket.transport.abort()
    await asyncio.sleep(0.05)
    query = {"since": str(seen[-1]), "epoch": epoch}
    moved = await RoomClient.open(second_server.ws, "storm", query=query, max_size=None)
    welcome = await moved.of_type("welcome")
    assert welcome["resume"]["status"] == "ok"
    rest = await gift_seqs(moved, total - seen[-1], within=20)
    await storm
    assert seen + rest == list(range(1, total + 1))
    assert seqs_of(await moved.drain()) == []
    await moved.close()


async def test_resume_after_real_gifts(server: Any, api: Api) -> None:
    alice = await api.token("alice")
    sender = await RoomClient.open(server.ws, "carol", alice)
    await sender.of_type("welcome")
    watcher = await RoomClient.open(server.ws, "carol")
    epoch = (await watcher.of_type("welcome"))["epoch"]
    first = await sender.gift("r-1", "rose")
    assert first["type"] == "ack"
    assert (await watcher.of_type("gift"))["seq"] == first["seq"]
    await watcher.close()
    missed = [await sender.gift(f"r-{n}", "rose") for n in (2, 3)]
    back = await RoomClient.open(
        server.ws, "carol", query={"since": str(first["seq"]), "epoch": epoch}
    )
    assert (await back.of_type("welcome"))["resume"]["status"] == "ok"
    replayed = [await back.of_type("gift") for _ in missed]
    assert [e["seq"] for e in replayed] == [a["seq"] for a in missed]
    assert all(e["sender"] == "alice" and e["gift"] == "rose" for e in replayed)
    await back.close()
    await sender.close()


async def test_viewers_are_told_when_the_count_changes(start_server: Any) -> None:
    server = await start_server(viewer_count_interval_seconds=0.1)
    first = await RoomClient.open(server.ws, "counted")
    assert (await first.of_type("welcome"))["viewers"] == 1
    second = await RoomClient.open(server.ws, "counted")
    await second.of_type("welcome")
    assert (await first.next(lambda m: m == {"type": "viewers", "count": 2}))["count"] == 2
    await second.close()
    assert (await first.next(lambda m: m == {"type": "viewers", "count": 1}))["count"] == 1
    await first.close()
