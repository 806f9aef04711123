"""Streams: a room takes gifts only while its creator is live.

Against a real server on the demo's data, with the follower minimum at
dave's 350 so that dave (an adult, gifting off, not live) can switch gifts
on and go live: carol is live from the start and stays so for the other
tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer

FOLLOWERS = 350


@pytest.fixture
async def live(start_server: StartServer) -> ServerProcess:
    return await start_server(min_creator_followers=FOLLOWERS, stream_idle_seconds=60)


@pytest.fixture
async def idle(start_server: StartServer) -> ServerProcess:
    # A look at live streams every quarter second.
    return await start_server(min_creator_followers=FOLLOWERS, stream_idle_seconds=1)


async def api_of(server: ServerProcess) -> Api:
    return Api(server.http)


async def gifting_on(api: Api, creator_token: str) -> None:
    switched = await api.http.post(
        "/api/creator/gifting", json={"enabled": True}, headers=bearer(creator_token)
    )
    assert switched.status_code == 200, switched.text


async def go_live(api: Api, creator_token: str) -> Any:
    return await api.http.post("/api/creator/streams", headers=bearer(creator_token))


async def gift_until(room: RoomClient, code: str, prefix: str) -> dict[str, Any]:
    """Send roses until one is answered with ``code`` ("ack", or an error's code):
    another process's view of a stream may lag it by the profile cache's second."""
    for attempt in range(40):
        reply = await room.gift(f"{prefix}-{attempt}", "rose")
        if (reply["type"] if reply["type"] == "ack" else reply["code"]) == code:
            return reply
        await asyncio.sleep(0.05)
    raise AssertionError(f"never answered {code}: {reply}")


async def test_a_room_takes_gifts_only_while_its_creator_is_live(live: ServerProcess) -> None:
    api = await api_of(live)
    dave = await api.token("dave", "creator")
    alice = await api.token("alice")
    await gifting_on(api, dave)
    room = await RoomClient.open(live.ws, "dave", alice)
    try:
        welcome = await room.of_type("welcome")
        assert (welcome["live"], welcome["stream_id"]) == (False, None)
        offline = await room.gift("before", "rose")
        assert (offline["type"], offline["code"]) == ("error", "room_offline")
        status = (await api.http.get("/api/rooms/dave")).json()
        assert (status["accepts_gifts"], status["reasons"], status["live"]) == (
            False,
            ["room_offline"],
            False,
        )

        started = await go_live(api, dave)
        assert started.status_code == 201
        stream_id = started.json()["stream_id"]
        assert started.json()["live"] is True
        again = await go_live(api, dave)  # going live while live: the same stream
        assert (again.status_code, again.json()["stream_id"]) == (200, stream_id)
        event = await room.of_type("stream_started")
        assert (event["stream_id"], event["room"]) == (stream_id, "dave")

        ack = await room.gift("during", "rose")
        assert ack["type"] == "ack"
        shown = await room.next(lambda m: m.get("type") == "gift" and m.get("seq") == ack["seq"])
        assert shown["stream_id"] == stream_id

        ended = await api.http.post(f"/api/creator/streams/{stream_id}/end", headers=bearer(dave))
        assert ended.status_code == 200
        assert (ended.json()["live"], ended.json()["end_reason"]) == (False, "ended")
        gone = await room.of_type("stream_ended")
        assert (gone["stream_id"], gone["reason"]) == (stream_id, "ended")
        await gift_until(room, "room_offline", "after")

        # Ending again answers the record and moves nothing; a heartbeat is refused.
        assert (
            await api.http.post(f"/api/creator/streams/{stream_id}/end", headers=bearer(dave))
        ).json()["ended"] == ended.json()["ended"]
        beat = await api.http.post(
            f"/api/creator/streams/{stream_id}/heartbeat", headers=bearer(dave)
        )
        assert (beat.status_code, beat.json()["code"]) == (409, "stream_ended")
        unknown = await api.http.post("/api/creator/streams/st-nope/end", headers=bearer(dave))
        assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_stream")

        # A new stream has a new id; the list has both, newest first.
        second = (await go_live(api, dave)).json()["stream_id"]
        assert second != stream_id
        listed = (await api.http.get("/api/creator/streams", headers=bearer(dave))).json()
        assert listed["live"]["stream_id"] == second
        assert [s["stream_id"] for s in listed["streams"]] == [second, stream_id]
    finally:
        await room.close()
        await api.aclose()


async def test_gifting_off_is_said_before_offline_and_only_creators_go_live(
    live: ServerProcess,
) -> None:
    api = await api_of(live)
    try:
        alice = await api.token("alice")
        room = await RoomClient.open(live.ws, "dave", alice)
        try:
            refused = await room.gift("off", "rose")  # gifting off and not live
            assert refused["code"] == "gifting_off"
        finally:
            await room.close()
        as_viewer = await go_live(api, alice)
        assert (as_viewer.status_code, as_viewer.json()["code"]) == (403, "not_allowed")
        assert (await api.http.post("/api/creator/streams")).status_code == 401
        # carol, the demo's live creator, is live from the start.
        carol = await RoomClient.open(live.ws, "carol", alice)
        try:
            welcome = await carol.of_type("welcome")
            assert welcome["live"] is True
            assert welcome["stream_id"]
        finally:
            await carol.close()
    finally:
        await api.aclose()


async def test_an_unseen_stream_ends_by_itself_and_a_seen_one_does_not(
    idle: ServerProcess,
) -> None:
    api = await api_of(idle)
    dave = await api.token("dave", "creator")
    alice = await api.token("alice")
    await gifting_on(api, dave)
    room = await RoomClient.open(idle.ws, "dave", alice)
    try:
        await room.of_type("welcome")
        stream_id = (await go_live(api, dave)).json()["stream_id"]
        # Heartbeats keep it live past the idle time...
        for _ in range(8):
            await asyncio.sleep(0.3)
            beat = await api.http.post(
                f"/api/creator/streams/{stream_id}/heartbeat", headers=bearer(dave)
            )
            assert beat.status_code == 200, beat.text
        # ...and so does the creator's own page, open in the room.
        page = await RoomClient.open(idle.ws, "dave", dave)
        try:
            await asyncio.sleep(2.5)
            listed = (await api.http.get("/api/creator/streams", headers=bearer(dave))).json()
            assert listed["live"]["stream_id"] == stream_id
        finally:
            await page.close()
        # Then nothing is seen: the server ends it.
        ended = await room.next(lambda m: m.get("type") == "stream_ended", within=5.0)
        assert (ended["stream_id"], ended["reason"]) == (stream_id, "idle")
        listed = (await api.http.get("/api/creator/streams", headers=bearer(dave))).json()
        assert listed["live"] is None
        assert listed["streams"][0]["end_reason"] == "idle"
    finally:
        await room.close()
        await api.aclose()
