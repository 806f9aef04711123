"""Everything a running process holds, built and torn down by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from server.access.authenticator import Authenticator
from server.access.jwks import JwksKeys
from server.access.revocation_watch import RevocationWatch
from server.access.revocations import Revocations
from server.core.catalog import Catalog, load_catalog
from server.core.keys import RoomKeys, WalletKeys
from server.core.promotions import Promotions
from server.core.tokens import ClaimNames, TokenRules
from server.errors import GiftError, UnknownWithdrawal
from server.metrics import Metrics
from server.money.ages import Ages
from server.money.audit import Audit
from server.money.budgets import Budgets
from server.money.clawbacks import Clawbacks
from server.money.creators import Creators, Eligibility
from server.money.fanclub import FanClubs
from server.money.gifting import Gifting, LargeSend
from server.money.goals import Goals, GoalWatch
from server.money.leaderboard import LeaderboardPush, Leaderboards
from server.money.orders import OrderLimits, Orders
from server.money.reports import Reports
from server.money.room_gifts import RoomGifts
from server.money.settlement import Settler, now_ms
from server.money.streams import Streams
from server.money.suspensions import Suspensions
from server.money.wallet import Wallets
from server.money.withdrawals import PayoutCallback, SandboxPayouts, Withdrawals
from server.ops.embedded import EmbeddedState
from server.ops.socket_faults import SocketFaults
from server.rooms.combo_ends import ComboEnds
from server.rooms.hub import Hub
from server.rooms.overlay_keys import OverlayKeys
from server.rooms.relay import Relay, ShardedRelay
from server.rooms.room_log import RoomLog
from server.rooms.tally import ProcessTally
from server.rooms.viewer_counts import ViewerCounts
from server.settings import Settings, parse_fan_thresholds, parse_promotions
from server.store.calls import FailureTally
from server.store.redis_client import as_cluster, check_mode, connect
from server.store.scripts import Scripts
from server.tuning.gc_freezer import GcFreezer
from server.tuning.gc_pauses import GcPauses
from server.tuning.pipelining import AutoPipeline

log = logging.getLogger(__name__)

# How often the sandbox payout provider looks for payouts that fell due.
SANDBOX_PAYOUT_POLL_SECONDS = 0.5
# How often each process looks for withdrawals whose hand-over was lost.
WITHDRAWAL_SWEEP_SECONDS = 10.0
# The longest wait between two looks at live streams (kept alive, ended idle).
STREAM_LOOK_MAX_SECONDS = 30.0
# How often each process looks whether its rooms' leaderboards changed: the
# room hears of a change at most this often.
LEADERBOARD_PUSH_SECONDS = 1.0
# How often each process counts its rooms' goals while gifts come.
GOAL_LOOK_SECONDS = 1.0


@dataclass
class Services:
    settings: Settings
    redis: Redis
    catalog: Catalog
    wallets: Wallets
    creators: Creators
    budgets: Budgets
    ages: Ages
    clawbacks: Clawbacks
    streams: Streams
    room_log: RoomLog
    combo_ends: ComboEnds
    authenticator: Authenticator
    revocations: Revocations
    orders: Orders
    overlay_keys: OverlayKeys
    presence: ProcessTally
    user_sockets: ProcessTally
    settler: Settler
    reports: Reports
    gifting: Gifting
    withdrawals: Withdrawals
    suspensions: Suspensions
    audit: Audit
    relay: Relay | ShardedRelay
    hub: Hub
    leaderboards: Leaderboards
    promotions: Promotions
    fanclubs: FanClubs
    goals: Goals
    metrics: Metrics
    pipeline: AutoPipeline
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def token_rules(settings: Settings) -> TokenRules:
    """What the platform's tokens must say, and in which claims."""
    return TokenRules(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
        claims=ClaimNames(
            user=settings.jwt_user_claim, role=settings.jwt_role_claim, age=settings.jwt_age_claim
        ),
    )


def _build(settings: Settings, redis: Redis) -> Services:
    prefix, process_id = settings.key_prefix, secrets.token_hex(8)
    ttl = settings.presence_ttl_seconds
    catalog = load_catalog(settings.catalog_path)
    pipeline = AutoPipeline(redis)
    scripts = Scripts.register(redis, pipeline if settings.script_batching else None)
    metrics = Metrics()
    wallets = Wallets(redis, scripts, settings, pipeline if settings.script_batching else None)
    suspensions = Suspensions(redis, settings.key_prefix)
    budgets = Budgets(redis, scripts, prefix, settings.budget_cooling_seconds)
    creators = Creators(
        redis,
        settings.key_prefix,
        Eligibility(settings.min_creator_followers, settings.creators_must_be_adult),
        scripts.follow,
    )
    ages = Ages(
        redis,
        prefix,
        budgets,
        settings.minor_policy,
        settings.minor_daily_limit_coins,
        settings.unknown_age_as,
    )
    room_log = RoomLog(redis, scripts, settings, pipeline if settings.script_batching else None)
    revocations = Revocations(redis, prefix, settings.jwt_leeway_seconds)
    combo_ends = ComboEnds(
        redis,
        pipeline,
        scripts.combo_end,
        room_log,
        prefix,
        process_id,
        settings.combo_window_ms,
        int(settings.combo_owner_timeout_seconds * 1000),
    )
    settler = Settler(wallets, settings.sweep_interval_seconds, settings.sweep_min_age_seconds)
    cluster = as_cluster(redis)
    # One node holds the wallets and the rooms alike: a gift's debit and its
    # announcement can be one script call.
    room_gifts = (
        RoomGifts(wallets, room_log, scripts, pipeline, settings.gift_gather_ms / 1000)
        if settings.script_batching and cluster is None
        else None
    )
    relay: Relay | ShardedRelay = (
        Relay(redis, settings.key_prefix)
        if cluster is None
        else ShardedRelay(cluster, settings.key_prefix)
    )
    hub = Hub(settings.coalesce_tick_ms / 1000, relay.subscribe, relay.unsubscribe)
    relay.on_event = hub.deliver
    metrics.sampled_counter(
        "giftstream_redis_errors", "Redis calls that failed", lambda: FailureTally.count
    )
    if EmbeddedState.up is not None:
        metrics.sampled_gauge(
            "giftstream_embedded_valkey_up",
            "1 while the embedded Valkey runs, 0 while it is being started again",
            lambda: float(bool(EmbeddedState.up)),
        )
        metrics.sampled_counter(
            "giftstream_embedded_valkey_restarts",
            "Times the embedded Valkey exited and was started again",
            lambda: EmbeddedState.restarts,
        )
    metrics.sampled_counter(
        "giftstream_accept_errors",
        "Connections the process could not accept (out of file descriptors)",
        lambda: SocketFaults.accept_errors,
    )
    metrics.sampled_counter(
        "giftstream_connections_over_address_cap",
        "Connections answered 429 because their client address held too many",
        lambda: SocketFaults.over_address_cap,
    )
    metrics.sampled_counter(
        "giftstream_requests_past_deadline",
        "Connections closed because their request (head and body) was not whole in time",
        lambda: SocketFaults.past_deadline,
    )
    metrics.sampled_counter(
        "giftstream_clients_gone_mid_body",
        "Requests whose client went away before its body was complete",
        lambda: SocketFaults.gone_mid_body,
    )
    metrics.sampled_counter(
        "giftstream_script_batches", "Pipelines of script calls sent", lambda: pipeline.batches
    )
    metrics.sampled_counter(
        "giftstream_script_calls", "Script calls sent in those pipelines", lambda: pipeline.calls
    )
    metrics.sampled_counter(
        "giftstream_room_frames", "Room frames written to viewers", lambda: hub.stats.frames
    )
    metrics.sampled_counter(
        "giftstream_room_events", "Room events received for fan-out", lambda: hub.stats.events
    )
    metrics.sampled_counter(
        "giftstream_credits_settled",
        "Gift credits settled by this process",
        lambda: settler.settled,
    )
    metrics.sampled_gauge(
        "giftstream_settlement_queue",
        "Gift credits waiting for this process's settlement worker",
        settler.queued,
    )
    streams = Streams(redis, scripts, prefix, creators, room_log, settings.stream_idle_seconds)
    promotions = Promotions(parse_promotions(settings.promotions))
    fanclubs = FanClubs(
        redis,
        scripts,
        wallets,
        settler,
        prefix,
        settings.fanclub_price_coins,
        parse_fan_thresholds(settings.fan_level_coins),
        settings.revenue_share_percent,
    )
    return Services(
        settings=settings,
        redis=redis,
        catalog=catalog,
        wallets=wallets,
        creators=creators,
        budgets=budgets,
        ages=ages,
        clawbacks=Clawbacks(redis, scripts, prefix),
        streams=streams,
        room_log=room_log,
        combo_ends=combo_ends,
        authenticator=Authenticator(
            token_rules(settings),
            revocations,
            secret=settings.jwt_secret,
            jwks=JwksKeys(settings.jwks_url, settings.jwks_refetch_seconds)
            if settings.jwks_url
            else None,
        ),
        revocations=revocations,
        orders=Orders(
            redis,
            settings.key_prefix,
            catalog,
            wallets,
            scripts,
            OrderLimits(
                ttl_seconds=settings.order_ttl_seconds,
                max_open=settings.max_open_orders,
                per_minute=settings.orders_per_minute,
                per_minute_per_address=settings.orders_per_minute_per_ip,
            ),
            promotions,
        ),
        overlay_keys=OverlayKeys(redis, settings.key_prefix),
        presence=ProcessTally(redis, lambda room: RoomKeys(prefix, room).presence, process_id, ttl),
        user_sockets=ProcessTally(
            redis,
            lambda user: WalletKeys(prefix, user).sockets,
            process_id,
            ttl,
            admit_script=scripts.tally_admit,
        ),
        settler=settler,
        reports=Reports(redis, scripts, prefix),
        gifting=Gifting(
            catalog,
            wallets,
            creators,
            room_log,
            settler,
            metrics,
            settings.revenue_share_percent,
            combo_ends,
            room_gifts,
            suspensions,
            LargeSend(settings.confirm_above_coins, settings.max_send_coins),
            ages,
            fanclubs,
        ),
        suspensions=suspensions,
        audit=Audit(redis, settings.key_prefix),
        withdrawals=Withdrawals(
            redis,
            scripts,
            settings,
            SandboxPayouts(redis, prefix, settings.sandbox_payout_delay_seconds)
            if settings.sandbox_payouts
            else None,
            suspensions,
            notify=lambda creator, withdrawal: tell_creator(room_log, creator, withdrawal),
        ),
        relay=relay,
        hub=hub,
        leaderboards=Leaderboards(redis, prefix, streams, fanclubs),
        fanclubs=fanclubs,
        promotions=promotions,
        goals=Goals(redis, scripts, prefix, room_log),
        metrics=metrics,
        pipeline=pipeline,
    )


async def hand_over_withdrawals(services: Services) -> None:
    """Withdrawals a dead process reserved but never handed to the provider."""
    while True:
        await asyncio.sleep(WITHDRAWAL_SWEEP_SECONDS)
        try:
            await services.withdrawals.hand_over_unsent(now_ms())
        except (GiftError, RedisError):
            log.warning("unsent withdrawals not looked at this round; will retry")


async def tell_creator(room_log: RoomLog, creator: str, withdrawal: dict[str, Any]) -> None:
    """A ``withdrawal`` message to the creator's own sockets in their room
    (``owner_only``: ``Hub.deliver`` gives it to no one else), outside the
    room's sequence."""
    message = {
        "type": "withdrawal",
        "room": creator,
        "owner_only": True,
        "withdrawal": withdrawal,
        "ts": now_ms(),
    }
    await room_log.announce(creator, message)


async def pay_sandbox_payouts(services: Services) -> None:
    """Demo mode: the sandbox provider's callbacks, as they fall due, through the
    same signed path as a real provider's (``server/api/http_api.py``)."""
    provider = services.withdrawals.provider
    if not isinstance(provider, SandboxPayouts):
        return
    while True:
        await asyncio.sleep(SANDBOX_PAYOUT_POLL_SECONDS)
        try:
            for creator, withdrawal_id in await provider.take_due(now_ms()):
                callback = PayoutCallback(
                    withdrawal_id, creator, "paid", f"sandbox_{secrets.token_hex(8)}"
                )
                try:
                    await services.withdrawals.resolve(callback, now_ms())
                except UnknownWithdrawal:
                    log.error("a sandbox payout for no withdrawal", extra={"creator": creator})
                await provider.done(creator, withdrawal_id)
        except GiftError:
            # Leased, not lost: what was not paid comes due again.
            log.warning("sandbox payouts not paid this round; they wait for the next")


async def mind_streams(services: Services) -> None:
    """Keep live the streams whose creator's page or overlay this process holds,
    and end those nothing has been seen of for the idle time: a few looks per
    idle time, so that an unseen stream ends within about a quarter of it late."""
    streams = services.streams
    interval = min(STREAM_LOOK_MAX_SECONDS, max(0.2, streams.idle_seconds / 4))
    while True:
        await asyncio.sleep(interval)
        try:
            await streams.keep_present(services.hub.rooms_with_owner(), now_ms())
            await streams.end_idle(now_ms())
        except (GiftError, RedisError):
            log.warning("streams not minded this round (Redis unreachable); will retry")


def _log_if_failed(task: asyncio.Task[None]) -> None:
    """A background job runs for the process's life: its end by an error is
    a bug, and the process goes on without it (no viewer counts, say), so it
    is said loudly instead of being kept until shutdown gathers it."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background job %s stopped by error", task.get_name(), exc_info=error)


@contextlib.asynccontextmanager
async def running_services(settings: Settings) -> AsyncIterator[Services]:
    if settings.redis_url is None:
        raise RuntimeError("no Redis URL: `giftstream serve` starts the embedded Valkey first")
    redis = connect(
        settings.redis_url, cluster=settings.redis_cluster, pool_size=settings.redis_pool_size
    )
    # The wrong kind of client fails later and less clearly (MOVED errors, or
    # a relay that hears nothing): refuse to start. An unreachable Redis is
    # not refused here: /readyz reports it, and the process recovers with it.
    with contextlib.suppress(RedisError, RedisClusterException):
        await check_mode(redis, cluster=settings.redis_cluster)
    services = _build(settings, redis)
    gc_pauses = GcPauses(services.metrics.registry)
    gc_pauses.start()
    # Last, so that what the services hold for the process's life is frozen.
    gc_freezer = GcFreezer(services.metrics.registry, services.hub.sockets)
    gc_freezer.start()
    for job in (
        gc_freezer.run(),
        services.presence.refresh_forever(),
        services.user_sockets.refresh_forever(),
        ViewerCounts(
            services.hub, services.presence, settings.viewer_count_interval_seconds
        ).run_forever(),
        LeaderboardPush(
            services.hub, services.leaderboards, LEADERBOARD_PUSH_SECONDS
        ).run_forever(),
        GoalWatch(services.hub, services.goals, GOAL_LOOK_SECONDS).run_forever(),
        RevocationWatch(services.revocations, services.hub).run(),
        services.combo_ends.run_forever(),
        services.relay.run(),
        services.settler.run_worker(),
        services.settler.run_sweeper(),
        services.reports.run_worker(),
        pay_sandbox_payouts(services),
        mind_streams(services),
        hand_over_withdrawals(services),
    ):
        task = asyncio.create_task(job, name=getattr(job, "__qualname__", None))
        task.add_done_callback(_log_if_failed)
        services.tasks.append(task)
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
        await services.pipeline.close()
        await redis.aclose()
        gc_freezer.stop()
        gc_pauses.stop()
