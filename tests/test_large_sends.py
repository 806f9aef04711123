"""Large taps: a send worth more than the threshold needs the user's confirmation,
and no send may be worth more than the ceiling, confirmed or not.

Against a real demo server with the default threshold (1,000 coins) and a
ceiling of 5,000 coins, so that alice's 5,000 welcome coins can reach it.
"""

from __future__ import annotations

import pytest

from tests.client import Api, RoomClient
from tests.conftest import ServerProcess, StartServer


@pytest.fixture
async def capped(start_server: StartServer) -> ServerProcess:
    return await start_server(max_send_coins=5000)


async def test_a_large_send_needs_confirm_and_none_passes_the_ceiling(
    capped: ServerProcess,
) -> None:
    api = Api(capped.http)
    alice = await api.token("alice")
    room = await RoomClient.open(capped.ws, "carol", alice)
    try:
        welcome = await room.of_type("welcome")
        assert welcome["limits"]["confirm_above_coins"] == 1000
        assert welcome["limits"]["max_send_coins"] == 5000

        asked = await room.gift("big-1", "rocket")
        assert (asked["code"], asked["coins"], asked["threshold"]) == (
            "confirm_required",
            1999,
            1000,
        )
        assert (await api.wallet(alice))["coins"] == 5000  # nothing moved
        at_threshold = await room.gift("roses", "rose", 1000)  # exactly 1,000: no question
        assert (at_threshold["type"], at_threshold["balance"]) == ("ack", 4000)
        assert (await room.gift("roses-1001", "rose", 1001))["code"] == "confirm_required"

        confirmed = await room.gift("big-1", "rocket", confirm=True)
        assert (confirmed["type"], confirmed["balance"]) == ("ack", 2001)
        # A retry of the paid request, unconfirmed, gets its first outcome.
        again = await room.gift("big-1", "rocket")
        assert (again["duplicate"], again["seq"]) == (True, confirmed["seq"])

        over = await room.gift("lion", "lion", confirm=True)
        assert (over["code"], over["limit"]) == ("send_limit_exceeded", 5000)
        assert (await room.gift("lots", "jet", 2, confirm=True))["code"] == "send_limit_exceeded"
        assert (await api.wallet(alice))["coins"] == 2001

        await room.send({"type": "gift", "id": "odd", "gift": "rose", "count": 1, "confirm": "yes"})
        assert (await room.reply("odd"))["code"] == "bad_field"
    finally:
        await room.close()
        await api.aclose()
