"""Whether a room takes gifts, as the pages ask it: the room's status and the
creator's own profile, for the demo's carol (on), dave (off) and a stranger."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess


async def test_a_room_that_takes_gifts_says_so_with_no_reasons(api: Api) -> None:
    response = await api.http.get("/api/rooms/carol")
    assert response.status_code == 200
    status = response.json()
    assert status["stream_id"].startswith("st-")  # live since the demo began
    assert status == {
        "room": "carol",
        "creator": "carol",
        "accepts_gifts": True,
        "reasons": [],
        "live": True,
        "stream_id": status["stream_id"],
    }


async def test_a_room_whose_creator_is_off_and_too_small_gives_both_reasons(api: Api) -> None:
    status = (await api.http.get("/api/rooms/dave")).json()
    assert status["accepts_gifts"] is False
    assert status["reasons"] == ["gifting_off", "followers_below_minimum", "room_offline"]


async def test_a_room_with_no_creator_is_not_a_creator_and_a_bad_id_is_a_typed_400(
    api: Api,
) -> None:
    status = (await api.http.get("/api/rooms/nobody_here")).json()
    assert status == {
        "room": "nobody_here",
        "creator": "nobody_here",
        "accepts_gifts": False,
        "reasons": ["not_a_creator"],
        "live": False,
        "stream_id": None,
    }
    bad = await api.http.get("/api/rooms/no%20spaces")
    assert bad.status_code == 400
    assert bad.json()["code"] == "bad_field"
    assert bad.json()["detail"].startswith("room must be")


async def test_the_room_status_matches_what_a_gift_meets(server: ServerProcess, api: Api) -> None:
    viewer = await api.token("alice")
    for room in ("carol", "dave"):
        accepts = (await api.http.get(f"/api/rooms/{room}")).json()["accepts_gifts"]
        client = await RoomClient.open(server.ws, room, viewer)
        try:
            reply = await client.gift(f"status-{room}", "rose")
        finally:
            await client.close()
        assert (reply["type"] == "ack") is accepts, reply
        if not accepts:  # dave has switched gifting off: the error says so
            assert reply["code"] == "gifting_off"


async def test_the_creator_profile_says_whether_gifting_is_on_and_why_not(api: Api) -> None:
    carol = await api.http.get(
        "/api/creator/profile", headers=bearer(await api.token("carol", "creator"))
    )
    assert carol.json() == {
        "user": "carol",
        "followers": 12_400,
        "min_followers": 1000,
        "adult": True,
        "age": "adult",
        "gifting_enabled": True,
        "eligible": True,
        "reasons": [],
    }
    dave = await api.http.get(
        "/api/creator/profile", headers=bearer(await api.token("dave", "creator"))
    )
    assert dave.json() == {
        "user": "dave",
        "followers": 350,
        "min_followers": 1000,
        "adult": True,
        "age": "adult",
        "gifting_enabled": False,
        "eligible": False,
        "reasons": ["followers_below_minimum"],
    }


async def test_a_creator_who_gains_followers_becomes_eligible(
    api: Api, redis: Redis, key_prefix: str
) -> None:
    # The operator's way to set a creator up (docs/money.md, key layout).
    await redis.hset(
        WalletKeys(key_prefix, "erin").creator, mapping={"gifts_enabled": 1, "followers": 999}
    )
    token = await api.token("erin", "creator")
    before = (await api.http.get("/api/creator/profile", headers=bearer(token))).json()
    # Her age is unknown too: that would stop her switching gifting on, not
    # the gifts of a switch made before ages were kept.
    assert (before["eligible"], before["reasons"]) == (
        False,
        ["followers_below_minimum", "not_adult"],
    )
    await redis.hset(WalletKeys(key_prefix, "erin").creator, "followers", 1000)
    # The server caches a profile for a second (server/money/creators.py).
    for _ in range(40):
        after = (await api.http.get("/api/rooms/erin")).json()
        if after["reasons"] == ["room_offline"]:
            break
        await asyncio.sleep(0.05)
    assert (after["accepts_gifts"], after["reasons"]) == (False, ["room_offline"])
    went_live = await api.http.post("/api/creator/streams", headers=bearer(token))
    assert went_live.status_code == 201
    after = (await api.http.get("/api/rooms/erin")).json()
    assert after == {
        "room": "erin",
        "creator": "erin",
        "accepts_gifts": True,
        "reasons": [],
        "live": True,
        "stream_id": went_live.json()["stream_id"],
    }


async def test_the_profile_needs_a_creator_token(api: Api) -> None:
    viewer = await api.http.get("/api/creator/profile", headers=bearer(await api.token("alice")))
    assert viewer.status_code == 403
    assert viewer.json()["code"] == "not_allowed"
    anonymous = await api.http.get("/api/creator/profile")
    assert anonymous.status_code == 401
