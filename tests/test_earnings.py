"""The creator's endpoints: earnings reports and the overlay's test alert.

Against a real server where the path is the product's (gifts over the room
socket, settled by the server's own worker), and against the real scripts
on the real Valkey where a test needs to choose the time of a gift (streams,
old outbox entries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.core.catalog import load_catalog
from server.core.earnings_keys import DAY_MS, HOUR_MS, EarningsKeys, day_of
from server.money import reconcile
from server.money.creators import Creators, Eligibility
from server.money.earnings import Earnings, selection_csv
from server.money.reports import Reports
from server.money.streams import Streams
from server.money.wallet import GiftOrder, PendingCredit, Wallets
from server.rooms.room_log import RoomLog
from server.settings import Settings
from server.store.scripts import Scripts
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess

# 2026-01-01T10:00:00Z: far from a day's edge, so that a stream stays in one day.
T0 = 1_767_225_600_000 + 10 * HOUR_MS
CATALOG = load_catalog()


@pytest.fixture
async def carol(api: Api) -> str:
    return await api.token("carol", role="creator")


async def earnings(api: Api, token: str, period: str | None = None) -> dict[str, Any]:
    query = {"period": period} if period else {}
    response = await api.http.get("/api/creator/earnings", params=query, headers=bearer(token))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def settled(api: Api, token: str, diamonds: int, within: float = 10.0) -> None:
    """Until the creator's wallet holds ``diamonds`` (the settler runs in the background)."""
    deadline = time.monotonic() + within
    while (await api.wallet(token))["diamonds"] != diamonds:
        assert time.monotonic() < deadline, f"diamonds never reached {diamonds}"
        await asyncio.sleep(0.05)


def gifts_by_id(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["gift"]: row for row in section["by_gift"]}


def supporters_by_user(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["user"]: row for row in section["top_supporters"]}


# ---------------------------------------------------------------- through the server

# (sender, request id, gift, count): two supporters, two kinds of gift.
SENDS = [
    ("alice", "e1", "corgi", 2),
    ("alice", "e2", "rose", 5),
    ("bob", "e3", "rose", 3),
    ("bob", "e4", "corgi", 1),
]


def expected() -> dict[str, Any]:
    """Sums of the gifts above, computed here the way docs/money.md says: each
    credited in the order sent, its share added to the creator's carry."""
    by_gift: dict[str, dict[str, int]] = {}
    by_user: dict[str, dict[str, int]] = {}
    carry = 0
    for sender, _, gift, count in SENDS:
        coins = CATALOG.gift(gift).coins * count
        diamonds, carry = divmod(carry + coins * 50, 100)
        for table, name in ((by_gift, gift), (by_user, sender)):
            row = table.setdefault(name, {"count": 0, "coins": 0, "diamonds": 0})
            row["count"] += count
            row["coins"] += coins
            row["diamonds"] += diamonds
    totals = {
        "sends": len(SENDS),
        "count": sum(r["count"] for r in by_gift.values()),
        "coins": sum(r["coins"] for r in by_gift.values()),
        "diamonds": sum(r["diamonds"] for r in by_gift.values()),
    }
    return {"totals": totals, "by_gift": by_gift, "by_user": by_user}


def check_section(section: dict[str, Any], want: dict[str, Any]) -> None:
    assert section["totals"] == want["totals"]
    gifts = gifts_by_id(section)
    assert set(gifts) == set(want["by_gift"])
    for gift, row in want["by_gift"].items():
        assert {k: gifts[gift][k] for k in row} == row, gift
    assert gifts["corgi"]["name"] == "Corgi"
    users = supporters_by_user(section)
    assert set(users) == set(want["by_user"])
    for user, row in want["by_user"].items():
        assert users[user]["coins"] == row["coins"], user
        assert users[user]["diamonds"] == row["diamonds"], user
    ranked = [row["coins"] for row in section["top_supporters"]]
    assert ranked == sorted(ranked, reverse=True)


async def test_earnings_are_the_sums_of_the_gifts_and_a_retry_counts_once(
    server: ServerProcess, api: Api, carol: str, redis: Redis
) -> None:
    senders = {user: await RoomClient.open(server.ws, "carol", await api.token(user))
               for user in ("alice", "bob")}  # fmt: skip
    try:
        for sender, request_id, gift, count in SENDS:
            ack = await senders[sender].gift(request_id, gift, count)
            assert ack["type"] == "ack", ack
        # The same request id again: acknowledged as a duplicate, paid and counted once.
        again = await senders["alice"].gift("e1", "corgi", 2)
        assert again["duplicate"] is True
    finally:
        for client in senders.values():
            await client.close()
    want = expected()
    await settled(api, carol, want["totals"]["diamonds"])

    for period in ("day", "week", "month", "all"):
        report = await earnings(api, carol, period)
        assert report["creator"] == "carol"
        assert report["diamonds"] == want["totals"]["diamonds"]
        assert report["period"]["name"] == period
        check_section(report["period"], want)
        series = report["period"]["series"]
        assert sum(point["diamonds"] for point in series) == want["totals"]["diamonds"]
        assert sum(point["coins"] for point in series) == want["totals"]["coins"]
        assert report["period"]["unit"] == {
            "day": "hour", "week": "day", "month": "day", "all": "month"
        }[period]  # fmt: skip
    day = await earnings(api, carol, "day")
    assert len(day["period"]["series"]) == 24
    this_hour = (day["now"] % DAY_MS) // HOUR_MS
    assert day["period"]["series"][this_hour]["diamonds"] == want["totals"]["diamonds"]
    assert len((await earnings(api, carol, "month"))["period"]["series"]) == 30
    assert (await earnings(api, carol))["period"]["name"] == "week"

    stream = day["stream"]
    assert stream is not None
    assert stream["live"] is True  # carol, live since the demo began
    assert stream["started"] <= day["now"]
    check_section(stream, want)
    # The stream's own selection has the same rows, and so has its CSV.
    chosen = await api.http.get(
        "/api/creator/earnings", params={"stream_id": stream["stream_id"]}, headers=bearer(carol)
    )
    assert chosen.json()["totals"] == want["totals"]
    assert [row["stream_id"] for row in chosen.json()["by_stream"]] == [stream["stream_id"]]
    exported = await api.http.get(
        "/api/creator/earnings",
        params={"stream_id": stream["stream_id"]},
        headers=bearer(carol) | {"accept": "text/csv"},
    )
    assert exported.headers["content-type"].startswith("text/csv")
    totals = want["totals"]
    assert exported.text.splitlines()[1] == (
        f"total,,,{totals['count']},{totals['coins']},{totals['diamonds']}"
    )

    # On one node a gift is credited by the call that pays for it: nothing
    # waits in an outbox for settlement (settlement's own idempotency is
    # held to account in tests/test_settle_batches.py).
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=server.key_prefix or ""))
    for sender in ("alice", "bob"):
        assert await wallets.pending_credits(sender) == []

    books = await reconcile.check(redis, server.key_prefix or "", expect_settled=True)
    assert books.clean, books.breaches


async def test_only_the_creator_reads_their_earnings(api: Api, carol: str) -> None:
    path = "/api/creator/earnings"
    for role in ("viewer", "overlay"):
        token = await api.token("carol", role=role)
        refused = await api.http.get(path, headers=bearer(token))
        assert refused.status_code == 403, role
        assert refused.json()["code"] == "not_allowed"
    anonymous = await api.http.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    bad = await api.http.get(path, params={"period": "year"}, headers=bearer(carol))
    assert bad.status_code == 400
    assert bad.json()["code"] == "bad_field"
    for query, code in (
        ({"stream_id": "st-none"}, "unknown_stream"),
        ({"stream_id": "../x"}, "bad_field"),
        ({"from": "yesterday"}, "bad_field"),
        ({"from": "2026-02-30"}, "bad_field"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "bad_field"),
    ):
        refused = await api.http.get(path, params=query, headers=bearer(carol))
        assert refused.json()["code"] == code, query
    # Another creator sees their own (empty) books, not carol's.
    dave = await api.token("dave", role="creator")
    report = await earnings(api, dave, "all")
    assert report["creator"] == "dave"
    assert report["period"]["totals"]["coins"] == 0
    assert report["stream"] is None


# ---------------------------------------------------------------- the scripts, with chosen times


@pytest.fixture
async def wallets(redis: Redis, key_prefix: str) -> AsyncIterator[Wallets]:
    found = Wallets(redis, Scripts.register(redis), Settings(key_prefix=key_prefix))
    await found.recharge("ann", "pay-1", "order-1", 6607, 0, T0)
    yield found
    books = await reconcile.check(redis, key_prefix, expect_settled=True)
    assert books.clean, books.breaches


async def pay_and_settle(
    wallets: Wallets, request_id: str, gift: str, at_ms: int, stream_id: str = ""
) -> None:
    await wallets.send_gift(
        GiftOrder("ann", request_id, CATALOG.gift(gift), 1, "carol", "carol", at_ms, stream_id)
    )
    for credit in await wallets.pending_credits("ann"):
        await wallets.settle(credit, at_ms)


def streams_of(redis: Redis, key_prefix: str) -> Streams:
    scripts = Scripts.register(redis)
    settings = Settings(key_prefix=key_prefix)
    creators = Creators(redis, key_prefix, Eligibility(1000))
    return Streams(redis, scripts, key_prefix, creators, RoomLog(redis, scripts, settings), 120)


def earnings_of(redis: Redis, key_prefix: str) -> Earnings:
    return Earnings(redis, key_prefix, CATALOG, streams_of(redis, key_prefix))


async def test_a_gift_counts_in_the_stream_it_was_sent_in_even_settled_late(
    wallets: Wallets, redis: Redis, key_prefix: str
) -> None:
    streams = streams_of(redis, key_prefix)
    report = earnings_of(redis, key_prefix)
    first, _ = await streams.go_live("carol", T0)
    await pay_and_settle(wallets, "s1", "corgi", T0, first.id)
    await pay_and_settle(wallets, "s2", "corgi", T0 + 60_000, first.id)
    # Paid in the first stream, but settled only after the next one began.
    await wallets.send_gift(
        GiftOrder("ann", "late", CATALOG.gift("rose"), 1, "carol", "carol", T0 + 90_000, first.id)
    )
    await streams.end("carol", first.id, T0 + 120_000)
    later = T0 + HOUR_MS
    second, _ = await streams.go_live("carol", later)
    await wallets.send_gift(
        GiftOrder("ann", "s3", CATALOG.gift("rocket"), 1, "carol", "carol", later, second.id)
    )
    pending = {credit.gift_key: credit for credit in await wallets.pending_credits("ann")}
    await wallets.settle(pending["ann:s3"], later)
    await wallets.settle(pending["ann:late"], later)
    assert (pending["ann:late"].gift, pending["ann:late"].stream_id) == ("rose", first.id)

    now = await report.report("carol", "day", later)
    latest = now["stream"]
    assert (latest["stream_id"], latest["live"], latest["started"]) == (second.id, True, later)
    assert latest["totals"]["sends"] == 1
    assert [row["gift"] for row in latest["by_gift"]] == ["rocket"]
    # The day has all four, each in the hour it was paid.
    day = now["period"]
    assert day["totals"]["sends"] == 4
    assert day["totals"]["coins"] == 299 * 2 + 1999 + 1
    hours = {point["start"]: point["coins"] for point in day["series"] if point["coins"]}
    assert hours == {T0: 299 * 2 + 1, T0 + HOUR_MS: 1999}
    # The day's selection: both streams, newest first, each with what it took.
    rows = {row["stream_id"]: row for row in now["by_stream"]}
    assert [row["stream_id"] for row in now["by_stream"]] == [second.id, first.id]
    assert (rows[first.id]["coins"], rows[first.id]["count"]) == (299 * 2 + 1, 3)
    assert (rows[second.id]["coins"], rows[first.id]["live"]) == (1999, False)
    assert now["totals"]["coins"] == 299 * 2 + 1999 + 1

    chosen = await report.report("carol", "day", later, stream_id=first.id)
    assert chosen["selection"] == {"stream_id": first.id, "from": T0, "to": T0 + 120_000}
    # 149 and 150 (the carry), then the rose: settled after the rocket's half
    # diamond was carried, it makes one.
    assert chosen["totals"] == {"sends": 3, "count": 3, "coins": 299 * 2 + 1, "diamonds": 300}
    assert {row["gift"]: row["count"] for row in chosen["by_gift"]} == {"corgi": 2, "rose": 1}
    assert chosen["by_supporter"] == [{"user": "ann", "coins": 599, "diamonds": 300}]
    assert chosen["by_day"] == [
        {"day": "2026-01-01", "start": day_of(T0) * DAY_MS, "coins": 599, "diamonds": 300}
    ]
    lines = selection_csv(chosen).splitlines()
    assert lines[0] == "section,key,label,count,coins,diamonds"
    assert lines[1] == "total,,,3,599,300"
    assert "gift,corgi,Corgi,2,598,299" in lines
    assert "day,2026-01-01,,,599,300" in lines


async def test_an_outbox_entry_in_the_old_format_is_settled_and_counted(
    wallets: Wallets, redis: Redis, key_prefix: str
) -> None:
    await wallets.send_gift(GiftOrder("ann", "old", CATALOG.gift("corgi"), 3, "carol", "carol", T0))
    outbox = wallets.keys("ann").outbox
    raw = await redis.hget(outbox, "ann:old")
    entry = raw.decode() if isinstance(raw, bytes) else str(raw)
    assert entry.endswith("|corgi|3|"), entry
    # As an earlier version wrote it: creator|coins|share|ts_ms|room.
    await redis.hset(outbox, "ann:old", entry.removesuffix("|corgi|3|"))

    [credit] = await wallets.pending_credits("ann")
    assert (credit.gift, credit.count, credit.coins) == ("", 0, 897)
    assert await wallets.settle(credit, T0) == 448

    report = await earnings_of(redis, key_prefix).report("carol", "all", T0)
    section = report["period"]
    assert section["totals"] == {"sends": 1, "count": 0, "coins": 897, "diamonds": 448}
    assert section["by_gift"] == [], "the gift of an old entry is unknown"
    assert supporters_by_user(section)["ann"] == {"user": "ann", "coins": 897, "diamonds": 448}


async def test_day_reports_expire_after_the_retention(
    wallets: Wallets, redis: Redis, key_prefix: str
) -> None:
    await pay_and_settle(wallets, "r1", "rose", T0)
    await Reports(redis, Scripts.register(redis), key_prefix).catch_up("carol")
    day = EarningsKeys(key_prefix, "carol").day(day_of(T0))
    for key in day.all():
        expires = await redis.pexpiretime(key)
        assert expires > (day_of(T0) + 1) * DAY_MS, key
    assert await redis.ttl(EarningsKeys(key_prefix, "carol").all_time.totals) == -1


def test_an_outbox_entry_with_the_wrong_number_of_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="fields"):
        PendingCredit.parse("ann", "ann:x", "carol|5|50|1|carol|rose")
    older = PendingCredit.parse("ann", "ann:x", "carol|5|50|1|carol|rose|5")
    assert (older.gift, older.count, older.room, older.stream_id) == ("rose", 5, "carol", "")
    new = PendingCredit.parse("ann", "ann:x", "carol|5|50|1|carol|rose|5|st-1")
    assert (new.gift, new.count, new.stream_id) == ("rose", 5, "st-1")


# ---------------------------------------------------------------- test alert


async def test_a_test_alert_reaches_the_room_outside_its_sequence(
    server: ServerProcess, api: Api, carol: str
) -> None:
    watcher = await RoomClient.open(server.ws, "carol")
    try:
        welcome = await watcher.of_type("welcome")
        sent = await api.http.post(
            "/api/creator/test-alert", json={"gift": "lion"}, headers=bearer(carol)
        )
        assert sent.status_code == 202, sent.text
        alert = await watcher.of_type("test_alert")
        assert alert["seq"] == 0
        assert (alert["gift"], alert["coins"], alert["tier"]) == ("lion", 29999, "fullscreen")
        assert alert["room"] == "carol"
        assert alert["count"] == 1
        # No body: a sample gift of its own choosing.
        default = await api.http.post("/api/creator/test-alert", headers=bearer(carol))
        assert default.status_code == 202
        assert (await watcher.of_type("test_alert"))["tier"] == "large"
    finally:
        await watcher.close()
    # Outside the sequence: the room's last seq did not move.
    again = await RoomClient.open(server.ws, "carol")
    try:
        assert (await again.of_type("welcome"))["last_seq"] == welcome["last_seq"]
    finally:
        await again.close()


async def test_a_test_alert_is_for_the_creator_and_a_known_gift(api: Api, carol: str) -> None:
    path = "/api/creator/test-alert"
    viewer = await api.token("alice")
    refused = await api.http.post(path, headers=bearer(viewer))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    unknown = await api.http.post(path, json={"gift": "unicorn"}, headers=bearer(carol))
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_gift")
    broken = await api.http.post(path, content=b"[1]", headers=bearer(carol))
    assert (broken.status_code, broken.json()["code"]) == (400, "bad_request")
    async with httpx.AsyncClient(base_url=api.http.base_url) as plain:
        assert (await plain.post(path)).status_code == 401
