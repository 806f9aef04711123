"""Bad input gets a typed error, changes nothing, and never stops the server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgpack
import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from server.client import HandshakeRefused
from server.core.auth import Role
from server.core.tokens import issue_token
from tests.client import Api, RoomClient
from tests.conftest import TOKEN_SECRET
from tests.test_gift_flow import assert_books_balance

BAD_GIFTS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown type", {"type": "steal", "id": "b1"}, "unknown_type"),
    ("no type", {"id": "b2", "gift": "rose", "count": 1}, "unknown_type"),
    ("unknown gift", {"type": "gift", "id": "b3", "gift": "unicorn", "count": 1}, "unknown_gift"),
    ("gift not a string", {"type": "gift", "id": "b4", "gift": 7, "count": 1}, "bad_field"),
    ("zero", {"type": "gift", "id": "b5", "gift": "rose", "count": 0}, "bad_count"),
    ("negative", {"type": "gift", "id": "b6", "gift": "rose", "count": -3}, "bad_count"),
    ("float", {"type": "gift", "id": "b7", "gift": "rose", "count": 1.0}, "bad_count"),
    ("bool", {"type": "gift", "id": "b8", "gift": "rose", "count": True}, "bad_count"),
    ("string", {"type": "gift", "id": "b9", "gift": "rose", "count": "5"}, "bad_count"),
    ("huge", {"type": "gift", "id": "b10", "gift": "rose", "count": 2**63 - 1}, "bad_count"),
    ("over the limit", {"type": "gift", "id": "b11", "gift": "rose", "count": 10_000}, "bad_count"),
    ("no id", {"type": "gift", "gift": "rose", "count": 1}, "bad_field"),
    ("id too long", {"type": "gift", "id": "x" * 65, "gift": "rose", "count": 1}, "bad_field"),
]


@pytest.mark.parametrize("codec", ["giftstream.v1.msgpack", "giftstream.v1.json"])
async def test_bad_messages_get_typed_errors_and_move_nothing(
    server: Any, api: Api, redis: Redis, codec: str
) -> None:
    user = f"fuzzy-{codec[-4:]}"
    viewer = await api.token(user)
    await api.buy(viewer, "coins_65")
    client = await RoomClient.open(server.ws, "carol", viewer, codec=codec)
    await client.of_type("welcome")
    for label, message, code in BAD_GIFTS:
        await client.send(message)
        error = await client.of_type("error")
        assert error["code"] == code, label
        assert error["message"], label
        assert error["temporary"] is False, label
    assert (await api.wallet(viewer))["coins"] == 65
    # The socket still works after all that.
    assert (await client.gift("good", "rose", 1))["balance"] == 64
    await client.close()
    await assert_books_balance(redis, server.key_prefix)


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",  # a byte msgpack never uses
        b"\x92\x01",  # an array cut short
        msgpack.packb([1, 2, 3]),  # not a map
        msgpack.packb("gift"),
        "{not json",
        "[]",
        "null",
        "[" * 4000,  # deep nesting, within the frame limit
        # Parses, but nests past the frame's depth bound (8), in both encodings.
        '{"type": "ping", "id": "d", "x": ' + "[" * 20 + "]" * 20 + "}",
        msgpack.packb({"type": "ping", "id": "d", "x": [[[[[[[[[[1]]]]]]]]]]}),
        '{"type": "gift", "id": "n", "gift": "rose", "count": NaN}',
        '{"type": "gift", "id": "n", "gift": "rose", "count": 1e400}',
        '{"type": "gift", "id": "n", "gift": "rose", "count": 123456789012345678901234567890}',
    ],
)
async def test_malformed_frames_are_refused(server: Any, api: Api, frame: bytes | str) -> None:
    viewer = await api.token("garbler")
    client = await RoomClient.open(server.ws, "carol", viewer)
    await client.of_type("welcome")
    await client.send_raw(frame)
    error = await client.of_type("error")
    assert error["code"] in {"bad_frame", "bad_count"}
    await client.send({"type": "ping", "id": "still-there"})
    assert (await client.of_type("pong"))["id"] == "still-there"
    await client.close()


async def test_oversize_frame_closes_with_1009(server: Any, api: Api) -> None:
    viewer = await api.token("bigmouth")
    client = await RoomClient.open(server.ws, "carol", viewer)
    await client.of_type("welcome")
    await client.send_raw(b"\x80" * 100_000)
    with pytest.raises(ConnectionClosed) as closed:
        await client.next(lambda m: False, within=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    # Others are unaffected.
    other = await RoomClient.open(server.ws, "carol", await api.token("bystander"))
    assert (await other.of_type("welcome"))["room"] == "carol"
    await other.close()


async def test_refusals_by_the_rules(server: Any, api: Api, redis: Redis) -> None:
    viewer = await api.token("ruled")
    await api.buy(viewer, "coins_65")
    to_dave = await RoomClient.open(server.ws, "dave", viewer)
    assert (await to_dave.gift("d-1", "rose"))["code"] == "gifting_off"
    nobody = await RoomClient.open(server.ws, "no-such-creator", viewer)
    assert (await nobody.gift("n-1", "rose"))["code"] == "gifts_disabled"
    anonymous = await RoomClient.open(server.ws, "carol")
    assert (await anonymous.of_type("welcome"))["you"]["can_send"] is False
    assert (await anonymous.gift("a-1", "rose"))["code"] == "not_allowed"
    overlay = await RoomClient.open(server.ws, "carol", await api.token("carol", "overlay"))
    assert (await overlay.gift("o-1", "rose"))["code"] == "not_allowed"
    own_room = await RoomClient.open(server.ws, "carol", await api.token("carol", "creator"))
    assert (await own_room.gift("c-1", "rose"))["code"] == "not_allowed"
    for client in (to_dave, nobody, anonymous, overlay, own_room):
        await client.close()
    assert (await api.wallet(viewer))["coins"] == 65
    await assert_books_balance(redis, server.key_prefix)


async def test_rate_limit_per_connection(strict: Any, redis: Redis) -> None:
    api = Api(strict.http)
    viewer = await api.token("hasty")
    await api.buy(viewer, "coins_65")
    client = await RoomClient.open(strict.ws, "carol", viewer)
    await client.of_type("welcome")
    for index in range(12):
        await client.send({"type": "gift", "id": f"h-{index}", "gift": "rose", "count": 1})
    replies = [await client.reply(f"h-{index}") for index in range(12)]
    acks = [r for r in replies if r["type"] == "ack"]
    limited = [r for r in replies if r["type"] == "error"]
    assert len(acks) == 5  # the burst the strict server allows
    assert {r["code"] for r in limited} == {"rate_limited"}
    assert all(r["temporary"] for r in limited)
    assert (await api.wallet(viewer))["coins"] == 60
    await client.close()
    await api.aclose()
    await assert_books_balance(redis, strict.key_prefix)


async def test_bad_tokens_and_origins_are_refused_before_the_socket_opens(
    server: Any,
) -> None:
    now = time.time()
    expired = issue_token(TOKEN_SECRET, "late", Role.VIEWER, now - 7200, 3600)
    forged = issue_token("some-other-secret-of-32-characters", "mallory", Role.VIEWER, now, 3600)
    good = issue_token(TOKEN_SECRET, "alice", Role.VIEWER, now, 3600)
    altered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    refusals = {
        expired: "expired",
        forged: "bad_signature",
        altered: "bad_signature",
        "garbage": "malformed",
    }
    for token, reason in refusals.items():
        with pytest.raises(HandshakeRefused) as refused:
            await RoomClient.open(server.ws, "carol", token)
        assert refused.value.status == 401
        assert (refused.value.code, refused.value.fields["reason"]) == ("unauthorized", reason)
    with pytest.raises(HandshakeRefused) as refused:
        await RoomClient.open(server.ws, "carol", good, origin="http://evil.example")
    assert refused.value.status == 403
    host = server.http.removeprefix("http://")
    same_origin = await RoomClient.open(server.ws, "carol", good, origin=f"http://{host}")
    assert (await same_origin.of_type("welcome"))["you"]["user"] == "alice"
    await same_origin.close()


async def test_unknown_subprotocols_are_refused(server: Any) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        await RoomClient.open(server.ws, "carol", codec="giftstream.v9.xml")
    assert (refused.value.status, refused.value.code) == (400, "unsupported_subprotocol")


async def test_http_errors_are_problem_documents(server: Any) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        no_token = await http.get("/api/wallet")
        assert no_token.status_code == 401
        assert no_token.headers["content-type"].startswith("application/problem+json")
        assert no_token.json()["code"] == "unauthorized"
        token = (await http.post("/api/dev/token", json={"user": "alice"})).json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        unknown = await http.post("/api/orders", json={"package": "free"}, headers=headers)
        assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_package")
        bad_user = await http.post("/api/dev/token", json={"user": "no spaces"})
        assert bad_user.json()["code"] == "bad_field"
        roles: list[object] = [[], {"a": 1}, 7, "admin"]
        for role in roles:  # a list once raised TypeError: a 500
            bad_role = await http.post("/api/dev/token", json={"user": "alice", "role": role})
            assert (bad_role.status_code, bad_role.json()["code"]) == (400, "bad_request"), role
        bad_json = await http.post("/api/orders", content=b"{", headers=headers)
        assert bad_json.json()["code"] == "bad_request"
        missing = await http.post("/api/sandbox/pay/" + "0" * 32, headers=headers)
        assert (missing.status_code, missing.json()["code"]) == (404, "unknown_order")
        huge = await http.post("/api/payments/webhook", content=b"x" * 70_000)
        assert (huge.status_code, huge.json()["code"]) == (413, "body_too_large")


async def test_demo_endpoints_are_closed_outside_demo_mode(start_server: Any) -> None:
    production = await start_server(demo=False)
    async with httpx.AsyncClient(base_url=production.http) as http:
        token = await http.post("/api/dev/token", json={"user": "alice"})
        assert (token.status_code, token.json()["code"]) == (404, "not_found")
        sandbox = await http.post("/api/sandbox/pay/" + "0" * 32)
        assert (sandbox.status_code, sandbox.json()["code"]) == (404, "not_found")


async def test_sockets_per_user_are_capped_across_processes(start_server: Any) -> None:
    first = await start_server(max_sockets_per_user=3)
    second = await start_server(max_sockets_per_user=3)
    api = Api(first.http)
    token = await api.token("hoarder")
    held = [
        await RoomClient.open(first.ws, "carol", token),
        await RoomClient.open(second.ws, "carol", token),
        await RoomClient.open(second.ws, "dave", token),
    ]
    for client in held:
        await client.of_type("welcome")
    for where in (first, second):
        with pytest.raises(HandshakeRefused) as refused:
            await RoomClient.open(where.ws, "carol", token)
        assert (refused.value.status, refused.value.code) == (429, "too_many_sockets")
        assert refused.value.temporary
    # Watching without a token is not capped, and another user is not affected.
    anonymous = await RoomClient.open(first.ws, "carol")
    other = await RoomClient.open(first.ws, "carol", await api.token("neighbour"))
    await held.pop().close()
    await asyncio.sleep(0.3)  # the server notices the close
    again = await RoomClient.open(first.ws, "carol", token)
    assert (await again.of_type("welcome"))["you"]["user"] == "hoarder"
    for client in (*held, anonymous, other, again):
        await client.close()
    await api.aclose()


async def test_gift_rate_per_user_spans_sockets(start_server: Any, redis: Redis) -> None:
    server = await start_server(user_gift_rate_per_second=0.2, user_gift_rate_burst=4)
    api = Api(server.http)
    viewer = await api.token("multitab")
    await api.buy(viewer, "coins_65")
    tabs = [await RoomClient.open(server.ws, "carol", viewer) for _ in range(3)]
    replies = []
    for index in range(9):
        replies.append(await tabs[index % 3].gift(f"tab-{index}", "rose", 1))
    assert [r["type"] for r in replies].count("ack") == 4
    refused = [r for r in replies if r["type"] == "error"]
    assert {(r["code"], r["temporary"]) for r in refused} == {("rate_limited", True)}
    assert (await api.wallet(viewer))["coins"] == 61
    # A refused gift spent no token, and a paid request id still answers.
    assert (await tabs[0].gift("tab-0", "rose", 1))["duplicate"] is True
    for tab in tabs:
        await tab.close()
    await api.aclose()
    await assert_books_balance(redis, server.key_prefix)
