"""Fan clubs: joining costs coins (a money script), the level grows with what
a member spends in the creator's rooms, shows on their gifts and in the
rankings, and some gifts need it. Real servers, real Valkey, and the books
reconciled after each money test.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import DEFAULT_CATALOG_PATH
from server.core.keys import WalletKeys
from server.money import reconcile
from tests.client import Api, RoomClient, bearer, funded_sender
from tests.conftest import StartServer


async def join(api: Api, token: str, request_id: str, room: str = "carol") -> Any:
    return await api.http.post(
        f"/api/rooms/{room}/fanclub/join", json={"request_id": request_id}, headers=bearer(token)
    )


async def books_balance(redis: Redis, prefix: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        report = await reconcile.check(redis, prefix, expect_settled=True)
        if report.clean or time.monotonic() > deadline:
            assert report.breaches == []
            return
        await asyncio.sleep(0.2)


async def fan_server(start_server: StartServer, tmp_path: Path) -> Any:
    """Price 10 coins; level 2 at 50 coins, 3 at 200; a catalogue with a gift
    for fans of level 2 or more."""
    document = json.loads(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))
    document["gifts"].append(
        {"id": "fan_heart", "name": "Fan Heart", "coins": 2, "tier": "small",
         "streakable": False, "fan_level_required": 2}
    )  # fmt: skip
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(document), encoding="utf-8")
    return await start_server(
        fanclub_price_coins=10, fan_level_coins="0,50,200", catalog_path=catalog
    )


async def test_joining_costs_coins_and_the_level_shows_on_the_next_gift(
    start_server: StartServer, tmp_path: Path, redis: Redis
) -> None:
    server = await fan_server(start_server, tmp_path)
    api = Api(server.http)
    token = await api.token("fanny")
    await api.buy(token, "coins_330")
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    sender = await RoomClient.open(server.ws, "carol", token)
    await sender.of_type("welcome")

    assert (await sender.gift("before", "rose", 1))["type"] == "ack"
    before = await watcher.of_type("gift")
    assert (before["fan_level"], before["fan_badge"]) == (0, None)

    joined = await join(api, token, "join-1")
    assert joined.status_code == 200, joined.text
    body = joined.json()
    assert (body["member"], body["fan_level"], body["coins"], body["balance"]) == (True, 1, 10, 319)
    assert (await api.wallet(token))["coins"] == 319
    # A retry of the same request: the first outcome, nothing paid again.
    again = (await join(api, token, "join-1")).json()
    assert (again["duplicate"], again["balance"]) == (True, 319)
    # A new request of a member's: refused, nothing paid.
    twice = await join(api, token, "join-2")
    assert (twice.status_code, twice.json()["code"]) == (409, "already_member")
    assert (await api.wallet(token))["coins"] == 319

    assert (await sender.gift("after", "rose", 1))["type"] == "ack"
    after = await watcher.of_type("gift")
    assert (after["fan_level"], after["fan_badge"]) == (1, "carol")
    # 10 (the price) + 1 + 100 = 111 coins counted: level 2 at 50.
    assert (await sender.gift("more", "hand_hearts", 1))["type"] == "ack"
    await watcher.of_type("gift")
    mine = await api.http.get("/api/rooms/carol/fanclub", headers=bearer(token))
    assert mine.json()["you"] == {
        "member": True, "joined": mine.json()["you"]["joined"], "fan_level": 2, "fan_coins": 111,
    }  # fmt: skip
    # The level the last gift's reply told the server: shown at once.
    assert (await sender.gift("later", "rose", 1))["type"] == "ack"
    assert (await watcher.of_type("gift"))["fan_level"] == 2

    # The creator was paid the price like a gift: the books balance.
    await books_balance(redis, server.key_prefix)
    for client in (sender, watcher):
        await client.close()
    await api.aclose()


async def test_a_fan_gift_needs_its_level(
    start_server: StartServer, tmp_path: Path, redis: Redis
) -> None:
    server = await fan_server(start_server, tmp_path)
    api = Api(server.http)
    sender = await funded_sender(server.ws, api, "hopeful")
    token = await api.token("hopeful")
    refused = await sender.gift("fh-1", "fan_heart", 1)
    assert (refused["type"], refused["code"]) == ("error", "fan_level_required")
    assert (refused["required"], refused["level"]) == (2, 0)
    assert (await api.wallet(token))["coins"] == 330  # nothing paid
    assert (await join(api, token, "j")).status_code == 200
    refused = await sender.gift("fh-2", "fan_heart", 1)
    assert (refused["code"], refused["level"]) == ("fan_level_required", 1)
    assert (await sender.gift("g", "doughnut", 2))["type"] == "ack"  # 60 more: 70 counted
    allowed = await sender.gift("fh-3", "fan_heart", 1)  # read afresh: level 2 now
    assert allowed["type"] == "ack", allowed
    await books_balance(redis, server.key_prefix)
    await sender.close()
    await api.aclose()


async def test_the_leaderboard_shows_fan_levels(server: Any, api: Api) -> None:
    token = await api.token("leveled")
    await api.buy(token, "coins_330")
    assert (await join(api, token, "j-1")).status_code == 200  # the default price: 1 coin
    deadline = time.monotonic() + 15
    while True:
        board = (await api.http.get("/api/rooms/carol/leaderboard")).json()
        if board["entries"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert [(e["user"], e["coins"], e["fan_level"]) for e in board["entries"]] == [
        ("leveled", 1, 1)
    ]


async def test_joins_that_cannot_be_get_typed_errors(server: Any, api: Api) -> None:
    poor = await api.token("poor")  # no coins
    broke = await join(api, poor, "j-1")
    assert (broke.status_code, broke.json()["code"]) == (402, "insufficient_coins")
    mine = await api.http.get("/api/rooms/carol/fanclub", headers=bearer(poor))
    assert mine.json()["you"]["member"] is False
    creator = await api.token("carol", "creator")
    own = await join(api, creator, "j-2")
    assert (own.status_code, own.json()["code"]) == (403, "not_allowed")
    bad = await join(api, poor, "not valid!")
    assert (bad.status_code, bad.json()["code"]) == (400, "bad_field")
    offline = await join(api, poor, "j-3", room="dave")  # dave is not live
    assert offline.status_code == 409
    info = (await api.http.get("/api/rooms/carol/fanclub")).json()
    assert (info["price_coins"], info["level_coins"][0], "you" in info) == (1, 0, False)


async def test_reconcile_catches_a_membership_nobody_paid_for(
    server: Any, api: Api, redis: Redis
) -> None:
    token = await api.token("member")
    await api.buy(token, "coins_330")
    assert (await join(api, token, "j-1")).status_code == 200
    await books_balance(redis, server.key_prefix)
    wallet = WalletKeys(server.key_prefix, "freeloader").wallet
    await redis.hset(wallet, mapping={"coins": "0", "fan:carol": "1767225600000|0"})
    report = await reconcile.check(redis, server.key_prefix)
    assert [b for b in report.breaches if "fan club" in b] == [
        "freeloader: fan club of carol: the wallet says '1767225600000|0', the ledger None"
    ]
