"""The creator's side, told whole, as an independent client would on the demo.

One demo server (the follower minimum at 352, so that two follows take
dave's 350 over it), nothing but HTTP and room sockets: dave cannot switch
gifts on, two follows bring him over and he can; he goes live; 17 one-coin
roses credit him 8 diamonds; a rocket later his stream's earnings are those
gifts exactly; he withdraws, once paid and once failed (the diamonds
return); the books reconcile after all of it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_gift_flow import assert_books_balance, wait_for_diamonds

PROFILE = {"method": "bank", "legal_name": "Dave Example", "tax_id": "98-7654321",
           "account": "DE89370400440532013000"}  # fmt: skip


async def test_a_creator_is_followed_goes_live_earns_and_withdraws(
    start_server: StartServer, redis: Redis
) -> None:
    server: ServerProcess = await start_server(
        min_creator_followers=352, sandbox_payout_delay_seconds=3600
    )
    api = Api(server.http)
    try:
        dave = await api.token("dave", "creator", adult=True)
        switch = {"enabled": True}
        refused = await api.http.post("/api/creator/gifting", json=switch, headers=bearer(dave))
        assert (refused.status_code, refused.json()["reasons"]) == (
            409,
            ["followers_below_minimum"],
        )
        for fan in ("alice", "bob"):
            followed = await api.http.post(
                "/api/follows/dave", headers=bearer(await api.token(fan))
            )
            assert followed.json()["changed"] is True
        switched = await api.http.post("/api/creator/gifting", json=switch, headers=bearer(dave))
        assert switched.json()["gifting_enabled"] is True

        alice = await RoomClient.open(server.ws, "dave", await api.token("alice"))
        try:
            assert (await alice.gift("early", "rose"))["code"] == "room_offline"
            live = await api.http.post("/api/creator/streams", headers=bearer(dave))
            stream_id = live.json()["stream_id"]
            for n in range(17):
                assert (await alice.gift(f"rose-{n}", "rose"))["type"] == "ack"
            wallet = await wait_for_diamonds(api, dave, 8)
            assert (wallet["diamonds"], wallet["received"]) == (8, 17)
            assert (await alice.gift("rocket", "rocket", confirm=True))["type"] == "ack"
        finally:
            await alice.close()
        # 17 roses carried half a diamond: the rocket's 999.5 completes it.
        await wait_for_diamonds(api, dave, 8 + 1000)
        ended = await api.http.post(f"/api/creator/streams/{stream_id}/end", headers=bearer(dave))
        assert ended.json()["live"] is False

        earnings = await api.http.get(
            "/api/creator/earnings", params={"stream_id": stream_id}, headers=bearer(dave)
        )
        report = earnings.json()
        assert report["totals"] == {"sends": 18, "count": 18, "coins": 17 + 1999, "diamonds": 1008}
        assert {row["gift"]: row["count"] for row in report["by_gift"]} == {
            "rose": 17,
            "rocket": 1,
        }
        assert report["by_supporter"] == [{"user": "alice", "coins": 2016, "diamonds": 1008}]

        await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(dave))
        asks = []
        for request_id, diamonds in (("paid", 600), ("fails", 300)):
            asked = await api.http.post(
                "/api/creator/withdrawals",
                json={"diamonds": diamonds, "request_id": request_id},
                headers=bearer(dave),
            )
            assert asked.json()["status"] == "pending", asked.text
            asks.append(asked.json()["withdrawal_id"])
        for withdrawal_id, outcome in zip(asks, ("paid", "failed"), strict=True):
            settled = await api.http.post(
                f"/api/sandbox/payouts/{withdrawal_id}",
                json={"outcome": outcome},
                headers=bearer(dave),
            )
            assert settled.json()["withdrawal"]["status"] == outcome
        wallet = await api.wallet(dave)
        assert (wallet["diamonds"], wallet.get("reserved", 0), wallet["paid_out"]) == (408, 0, 600)
        assert server.key_prefix is not None
        await assert_books_balance(redis, server.key_prefix)
    finally:
        await api.aclose()
