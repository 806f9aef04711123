"""Recharge orders are limited: per user and per address, by how many are open,
and an open order lives hours, not a month.

One user could create 290 orders a second, each kept 30 days. These run real
servers with small limits and count what Redis keeps.
"""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from server.core.keys import order_key
from tests.client import Api, bearer
from tests.conftest import StartServer


async def order(api: Api, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await api.http.post(
        "/api/orders", json={"package": "coins_65"}, headers=bearer(token) | (headers or {})
    )


async def test_a_user_ordering_too_fast_is_told_to_slow_down(start_server: StartServer) -> None:
    server = await start_server(orders_per_minute=3, orders_per_minute_per_ip=1000)
    api = Api(server.http)
    token = await api.token("eager")
    statuses = [(await order(api, token)).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = (await order(api, token)).json()
    assert (refused["code"], refused["temporary"]) == ("rate_limited", True)
    # Another user is not slowed by this one.
    assert (await order(api, await api.token("patient"))).status_code == 201
    await api.aclose()


async def test_one_address_ordering_for_many_users_is_limited(start_server: StartServer) -> None:
    server = await start_server(orders_per_minute=1000, orders_per_minute_per_ip=4)
    api = Api(server.http)
    tokens = [await api.token(f"sock{n}") for n in range(6)]
    # A client behind a reverse proxy on this machine: uvicorn takes its
    # address from X-Forwarded-For, which it trusts from 127.0.0.1.
    remote = {"x-forwarded-for": "203.0.113.7"}
    statuses = [(await order(api, token, remote)).status_code for token in tokens]
    assert statuses == [201, 201, 201, 201, 429, 429]
    # Another address is not limited by that one; the machine itself is not at all.
    other = {"x-forwarded-for": "198.51.100.9"}
    assert (await order(api, tokens[0], other)).status_code == 201
    assert (await order(api, tokens[1])).status_code == 201
    await api.aclose()


async def test_open_orders_are_capped_and_a_paid_one_frees_its_place(
    start_server: StartServer,
) -> None:
    server = await start_server(max_open_orders=2, orders_per_minute=1000)
    api = Api(server.http)
    token = await api.token("hoarder")
    first, second = [(await order(api, token)).json()["order_id"] for _ in range(2)]
    third = await order(api, token)
    assert third.status_code == 429
    assert third.json()["code"] == "too_many_orders"
    paid = await api.http.post(f"/api/sandbox/pay/{first}", headers=bearer(token))
    assert paid.json()["status"] == "ok"
    assert (await order(api, token)).status_code == 201
    assert second
    await api.aclose()


async def test_an_open_order_lives_hours_not_a_month(
    start_server: StartServer, redis: Redis, key_prefix: str
) -> None:
    server = await start_server()
    api = Api(server.http)
    order_id = (await order(api, await api.token("buyer"))).json()["order_id"]
    ttl = await redis.ttl(order_key(key_prefix, order_id))
    assert 0 < ttl <= 3 * 24 * 3600  # the default: a provider's redelivery horizon
    await api.aclose()
