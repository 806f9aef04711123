"""Minors: by default they may neither buy coins nor send gifts; under the
"limited" policy they may, within a daily limit the gift script enforces.

Age comes from the token (the demo's token endpoint takes "age") or from the
operator's word, which overrides it. Against real demo servers.
"""

from __future__ import annotations

from typing import Any

from tests.client import Api, RoomClient, bearer
from tests.conftest import StartServer

OPERATOR_TOKEN = "minors-test-operator-token"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}


async def token(api: Api, user: str, **claims: Any) -> str:
    response = await api.http.post("/api/dev/token", json={"user": user, **claims})
    assert response.status_code == 200, response.text
    issued: str = response.json()["token"]
    return issued


async def test_a_minor_may_not_buy_coins_or_send_gifts_by_default(
    start_server: StartServer,
) -> None:
    server = await start_server(operator_token=OPERATOR_TOKEN)
    api = Api(server.http)
    try:
        kid = await token(api, "kid", age="minor")
        order = await api.http.post(
            "/api/orders", json={"package": "coins_65"}, headers=bearer(kid)
        )
        assert (order.status_code, order.json()["code"]) == (403, "age_restricted")
        room = await RoomClient.open(server.ws, "carol", kid)
        try:
            assert (await room.gift("k-1", "rose"))["code"] == "age_restricted"
        finally:
            await room.close()

        # alice's token says nothing of her age (unknown counts as adult)...
        alice = await api.token("alice")
        room = await RoomClient.open(server.ws, "carol", alice)
        try:
            assert (await room.gift("a-1", "rose"))["type"] == "ack"
            # ...until the operator says she is a minor, over any token.
            marked = await api.http.put(
                "/api/admin/users/alice/age", json={"status": "minor"}, headers=OPERATOR
            )
            assert marked.status_code == 200
            assert (await room.gift("a-2", "rose"))["code"] == "age_restricted"
            # A retry of what she paid before is still answered with its outcome.
            assert (await room.gift("a-1", "rose"))["duplicate"] is True
        finally:
            await room.close()
        adult_claim = await token(api, "alice", adult=True)
        refused = await api.http.post(
            "/api/orders", json={"package": "coins_65"}, headers=bearer(adult_claim)
        )
        assert refused.json()["code"] == "age_restricted"
        assert (await api.wallet(alice))["coins"] == 4999
    finally:
        await api.aclose()


async def test_under_the_limited_policy_a_minor_spends_within_the_daily_limit(
    start_server: StartServer,
) -> None:
    server = await start_server(minor_policy="limited", minor_daily_limit_coins=50)
    api = Api(server.http)
    try:
        kid = await token(api, "kid2", age="minor")
        await api.buy(kid, "coins_65")
        room = await RoomClient.open(server.ws, "carol", kid)
        try:
            assert (await room.gift("k-1", "rose", 40))["type"] == "ack"
            over = await room.gift("k-2", "rose", 11)
            assert (over["code"], over["remaining"]) == ("budget_exceeded", 10)
            # A raise of their own limit waits its cooling-off, and the
            # policy's limit is held before each gift anyway.
            await api.http.put("/api/wallet/budget", json={"daily": 60}, headers=bearer(kid))
            assert (await room.gift("k-3", "rose", 11))["code"] == "budget_exceeded"
            assert (await room.gift("k-4", "rose", 10))["type"] == "ack"
        finally:
            await room.close()
        budget = (await api.http.get("/api/wallet/budget", headers=bearer(kid))).json()
        assert (budget["daily"]["limit"], budget["daily"]["spent"]) == (50, 50)
    finally:
        await api.aclose()


async def test_unknown_ages_may_count_as_minors(start_server: StartServer) -> None:
    server = await start_server(unknown_age_as="minor")
    api = Api(server.http)
    try:
        unknown = await token(api, "bob")
        adult = await token(api, "bob", age="adult")
        for who, expected in ((unknown, "age_restricted"), (adult, "ack")):
            room = await RoomClient.open(server.ws, "carol", who)
            try:
                reply = await room.gift(f"u-{expected}", "rose")
                assert reply.get("code", reply["type"]) == expected
            finally:
                await room.close()
        for bad in ({"age": "teen"}, {"age": 12}, {"age": "minor", "adult": True}):
            refused = await api.http.post("/api/dev/token", json={"user": "bob", **bad})
            assert refused.status_code == 400, bad
    finally:
        await api.aclose()
