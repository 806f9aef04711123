"""Everything a running process holds, built and torn down by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import BlockingConnectionPool, Redis

from server.catalog import Catalog, load_catalog
from server.creators import Creators
from server.gifting import Gifting
from server.keys import RoomKeys, WalletKeys
from server.metrics import Metrics
from server.orders import Orders
from server.overlay_keys import OverlayKeys
from server.relay import Relay
from server.room_log import RoomLog
from server.rooms import Hub
from server.scripts import Scripts
from server.settings import Settings
from server.settlement import Settler
from server.tally import ProcessTally
from server.wallet import FailureTally, Wallets

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    redis: Redis
    catalog: Catalog
    wallets: Wallets
    creators: Creators
    room_log: RoomLog
    orders: Orders
    overlay_keys: OverlayKeys
    presence: ProcessTally
    user_sockets: ProcessTally
    settler: Settler
    gifting: Gifting
    relay: Relay
    hub: Hub
    metrics: Metrics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _build(settings: Settings, redis: Redis) -> Services:
    prefix, process_id = settings.key_prefix, secrets.token_hex(8)
    ttl = settings.presence_ttl_seconds
    catalog = load_catalog(settings.catalog_path)
    scripts = Scripts.register(redis)
    metrics = Metrics()
    wallets = Wallets(redis, scripts, settings)
    creators = Creators(redis, settings.key_prefix, settings.min_creator_followers)
    room_log = RoomLog(redis, scripts, settings)
    settler = Settler(wallets, settings.sweep_interval_seconds, settings.sweep_min_age_seconds)
    relay = Relay(redis, settings.key_prefix)
    hub = Hub(settings.coalesce_tick_ms / 1000, relay.subscribe, relay.unsubscribe)
    relay.on_event = hub.deliver
    metrics.sampled_counter(
        "giftstream_redis_errors", "Redis calls that failed", lambda: FailureTally.count
    )
    metrics.sampled_counter(
        "giftstream_room_frames", "Room frames written to viewers", lambda: hub.stats.frames
    )
    metrics.sampled_counter(
        "giftstream_room_events", "Room events received for fan-out", lambda: hub.stats.events
    )
    return Services(
        settings=settings,
        redis=redis,
        catalog=catalog,
        wallets=wallets,
        creators=creators,
        room_log=room_log,
        orders=Orders(redis, settings.key_prefix, catalog, wallets),
        overlay_keys=OverlayKeys(redis, settings.key_prefix),
        presence=ProcessTally(redis, lambda room: RoomKeys(prefix, room).presence, process_id, ttl),
        user_sockets=ProcessTally(
            redis, lambda user: WalletKeys(prefix, user).sockets, process_id, ttl
        ),
        settler=settler,
        gifting=Gifting(
            catalog, wallets, creators, room_log, settler, metrics, settings.revenue_share_percent
        ),
        relay=relay,
        hub=hub,
        metrics=metrics,
    )


@contextlib.asynccontextmanager
async def running_services(settings: Settings) -> AsyncIterator[Services]:
    if settings.redis_url is None:
        raise RuntimeError("no Redis URL: `giftstream serve` starts the embedded Valkey first")
    # A bounded pool that makes callers queue for a connection (rather than
    # fail, as the plain pool does when full), and bounded waits: a hung Redis
    # turns into `unavailable` errors (retry with the same request id), never
    # into requests that hang forever.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=5.0,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
    )
    redis = Redis.from_pool(pool)
    services = _build(settings, redis)
    for job in (
        services.presence.refresh_forever(),
        services.user_sockets.refresh_forever(),
        services.relay.run(),
        services.settler.run_worker(),
        services.settler.run_sweeper(),
    ):
        services.tasks.append(asyncio.create_task(job))
    try:
        yield services
    finally:
        for task in services.tasks:
            task.cancel()
        await asyncio.gather(*services.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await services.presence.clear()
            await services.user_sockets.clear()
        await services.relay.close()
        await redis.aclose()
