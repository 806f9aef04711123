"""Health, metrics, logs, and the sweeper that settles what a crash left behind."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.core.catalog import load_catalog
from server.money.settlement import MAX_SWEEP_DELAY, SWEEP_DUTY, next_sweep_delay
from server.money.wallet import GiftOrder, Wallets
from server.settings import Settings
from server.store.scripts import Scripts
from tests.client import Api, RoomClient
from tests.test_gift_flow import assert_books_balance


async def test_health_and_readiness(server: Any) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/livez")).json() == {"status": "ok"}
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")


async def test_metrics_count_gifts_connections_and_latency(server: Any, api: Api) -> None:
    viewer = await api.token("measured")
    await api.buy(viewer, "coins_65")
    client = await RoomClient.open(server.ws, "carol", viewer)
    await client.of_type("welcome")
    assert (await client.gift("m-1", "finger_heart", 2))["type"] == "ack"
    await client.send({"type": "gift", "id": "m-2", "gift": "nope", "count": 1})
    await client.of_type("error")
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200  # a plain route: no redirect to /metrics/
    text = response.text
    assert 'giftstream_connections{role="viewer"}' in text
    assert 'giftstream_gifts_total{tier="small"}' in text
    assert "giftstream_coins_spent_total" in text
    assert "giftstream_gift_ack_seconds_bucket" in text
    assert 'giftstream_request_errors_total{code="unknown_gift"} 1.0' in text
    assert "giftstream_redis_errors_total 0.0" in text
    assert "giftstream_room_events_total" in text
    assert "giftstream_room_frames_total" in text
    assert "giftstream_settlement_queue 0.0" in text
    assert "giftstream_credits_settled_total" in text
    await client.close()


async def test_metrics_time_garbage_collections_from_the_start(server: Any) -> None:
    # `giftstream serve` collects once, then freezes what it has, as it starts
    # (server/tuning/gc_freezer.py): that full collection is already on the books.
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text

    def value(pattern: str) -> float:
        found = re.search(pattern, text, re.M)
        assert found is not None, text[-2000:]
        return float(found.group(1))

    assert value(r'^giftstream_gc_pause_seconds_count\{generation="2"\} (\S+)$') >= 1
    assert value(r"^giftstream_gc_full_collections_total (\S+)$") >= 1
    # The modules, the app and its services: tens of thousands of objects.
    assert value(r"^giftstream_gc_frozen_objects (\S+)$") > 10_000


async def test_logs_never_contain_tokens(server: Any, api: Api) -> None:
    token = await api.token("secretive")
    client = await RoomClient.open(server.ws, "carol", token)
    await client.of_type("welcome")
    await client.close()
    bad = await api.http.get("/api/wallet", headers={"authorization": f"Bearer {token}x"})
    assert bad.status_code == 401
    await asyncio.sleep(0.2)
    output = server.output()
    assert "/ws/rooms/carol" in output  # the connection was logged ...
    assert token not in output  # ... without its token
    assert token.split(".")[1] not in output


async def test_sweeper_settles_credits_a_crash_left_pending(sweeping: Any, redis: Redis) -> None:
    """A gift committed by a process that died before settling is settled later.

    The gift script is run directly (as the dead process did); no settlement
    follows it; the running server's sweeper must find and settle it.
    """
    settings = Settings(key_prefix=sweeping.key_prefix)
    wallets = Wallets(redis, Scripts.register(redis), settings)
    now_ms = int(time.time() * 1000)
    await wallets.grant_coins("ghost", 500, reason="test", now_ms=now_ms)
    gift = load_catalog().gift("money_gun")
    outcome = await wallets.send_gift(
        GiftOrder("ghost", "orphan-1", gift, 1, "carol", "carol", now_ms)
    )
    assert outcome.balance == 0
    assert len(await wallets.pending_credits("ghost")) == 1
    await assert_books_balance(redis, sweeping.key_prefix, settled=True)
    assert await wallets.pending_credits("ghost") == []
    creator = await wallets.balances("carol")
    assert (creator["diamonds"], creator["platform_hundredths"]) == (250, 25_000)


def test_slow_sweeps_stretch_the_interval_to_a_bounded_share_of_the_time() -> None:
    # A quick sweep (a small key space): the configured interval.
    assert next_sweep_delay(5.0, 0.05) == 5.0
    # Half a second (about a million keys here): the sweeper sleeps long
    # enough to sweep for at most SWEEP_DUTY of the time.
    delay = next_sweep_delay(5.0, 0.5)
    assert delay > 5.0
    assert 0.5 / (0.5 + delay) == pytest.approx(SWEEP_DUTY)
    # However slow a sweep, a credit left behind does not wait for ever.
    assert next_sweep_delay(5.0, 3600.0) == MAX_SWEEP_DELAY
    # A longer configured interval is kept.
    assert next_sweep_delay(600.0, 3600.0) == 600.0
