"""The overlay key: an OBS source's URL opens its room, until the creator regenerates it."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.client import Api, RoomClient, bearer


async def overlay_key(api: Api, token: str, regenerate: bool = False) -> dict[str, Any]:
    method = api.http.post if regenerate else api.http.get
    response = await method("/api/creator/overlay-key", headers=bearer(token))
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def test_overlay_key_opens_the_room_and_regenerating_revokes_it(
    server: Any, api: Api
) -> None:
    creator = await api.token("carol", "creator")
    first = await overlay_key(api, creator)
    assert first["url"] == f"/overlay.html?room=carol&key={first['key']}"
    assert (await overlay_key(api, creator))["key"] == first["key"]  # stable until regenerated

    socket = await connect(f"{server.ws}/ws/rooms/carol?key={first['key']}")
    overlay = RoomClient(socket, "giftstream.v1.msgpack")
    welcome = await overlay.of_type("welcome")
    assert welcome["you"] == {"user": "carol", "role": "overlay", "can_send": False}
    viewer = await api.token("fan")
    await api.buy(viewer, "coins_65")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    ack = await sender.gift("for-the-overlay", "finger_heart", 1)
    assert (await overlay.of_type("gift"))["seq"] == ack["seq"]
    assert (await overlay.gift("overlay-spends", "rose"))["code"] == "not_allowed"

    second = await overlay_key(api, creator, regenerate=True)
    assert second["key"] != first["key"]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws}/ws/rooms/carol?key={first['key']}")
    assert refused.value.response.status_code == 401
    # A key opens only its own creator's room.
    with pytest.raises(InvalidStatus):
        await connect(f"{server.ws}/ws/rooms/dave?key={second['key']}")
    fresh = await connect(f"{server.ws}/ws/rooms/carol?key={second['key']}")
    await fresh.close()
    for client in (overlay, sender):
        await client.close()


async def test_only_creators_get_overlay_keys(api: Api) -> None:
    viewer = await api.token("alice")
    response = await api.http.get("/api/creator/overlay-key", headers=bearer(viewer))
    assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
    anonymous = await api.http.post("/api/creator/overlay-key")
    assert anonymous.status_code == 401
