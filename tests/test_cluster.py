"""Two server processes on a three-primary Valkey Cluster.

The same money rules as on one node, with the wallets of one gift on three
different shards: the sender's coins on one, the creator's diamonds on
another, the room's log and channel wherever its hash tag falls. Room events
travel over sharded pub/sub (SPUBLISH / SSUBSCRIBE). Everything here is
real: the cluster (``tests/cluster_support.py``), the ``giftstream serve``
processes, HTTP and WebSockets, and ``giftstream reconcile`` at the end.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.catalog import load_catalog
from server.core.keys import RoomKeys, WalletKeys
from server.money.wallet import GiftOrder, Wallets
from server.ops.embedded_cluster import EmbeddedCluster
from server.rooms.room_log import RoomLog
from server.settings import Settings
from server.store.scripts import Scripts
from tests.client import Api, RoomClient, bearer
from tests.cluster_support import (  # noqa: F401 (fixtures)
    StartClusterServer,
    cluster,
    cluster_prefix,
    cluster_redis,
    move_slot_of,
    owner_of,
    shard_of,
    start_cluster_server,
    users_on_other_shards,
)
from tests.conftest import REPO_ROOT, ServerProcess
from tests.test_gift_flow import assert_books_balance, wait_for_diamonds

CREATOR = "carol"  # the demo creator, seeded by every server in demo mode
UNLIMITED = {
    "gift_rate_per_second": 100_000,
    "gift_rate_burst": 100_000,
    "user_gift_rate_per_second": 100_000,
    "user_gift_rate_burst": 100_000,
    "max_sockets_per_user": 1000,
}
Pair = tuple[ServerProcess, ServerProcess]


@pytest.fixture(scope="module")
async def pair(start_cluster_server: StartClusterServer) -> Pair:  # noqa: F811
    # Sweepers that look often, at credits a second old: the fast path
    # settles first almost always, and a second settle changes nothing.
    settings = {**UNLIMITED, "sweep_interval_seconds": 0.3, "sweep_min_age_seconds": 1}
    first, second = await asyncio.gather(
        start_cluster_server(**settings), start_cluster_server(**settings)
    )
    return first, second


@pytest.fixture(scope="module")
async def apis(pair: Pair) -> Any:
    clients = (Api(pair[0].http), Api(pair[1].http))
    yield clients
    for client in clients:
        await client.aclose()


async def reconcile_command(cluster: EmbeddedCluster, prefix: str) -> tuple[int, str]:  # noqa: F811
    """``giftstream reconcile --redis-cluster --settled``: exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "reconcile", "--redis-cluster", "--settled",
        "--redis-url", cluster.url, "--key-prefix", prefix,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return await process.wait(), output.decode()


async def shard_subscribers(redis: Redis, channel: str) -> int:
    """PUBSUB SHARDNUMSUB on the primary that owns ``channel``."""
    host, port = (await owner_of(redis, channel)).split(":")
    node = Redis(host=host, port=int(port))
    try:
        answer: Any = await node.execute_command(  # type: ignore[no-untyped-call]
            "PUBSUB", "SHARDNUMSUB", channel
        )
        return int(answer[1])
    finally:
        await node.aclose()


async def until_subscribers(redis: Redis, channel: str, expected: int) -> int:
    deadline = time.monotonic() + 10
    while (count := await shard_subscribers(redis, channel)) != expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return count


async def watching_on(server: ServerProcess, redis: Redis, prefix: str) -> tuple[RoomClient, str]:
    """A watcher of the creator's room on ``server``, once its relay is subscribed."""
    watcher = await RoomClient.open(server.ws, CREATOR)
    await watcher.of_type("welcome")
    channel = RoomKeys(prefix, CREATOR).channel
    assert await until_subscribers(redis, channel, 1) == 1
    return watcher, channel


async def test_a_gift_crosses_three_shards_and_two_processes(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster: EmbeddedCluster,  # noqa: F811
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    (first, second), (api_1, api_2) = pair, apis
    sender, watcher = users_on_other_shards("vera{}", 2, {shard_of(CREATOR)})
    wallets = [WalletKeys(cluster_prefix, user).wallet for user in (sender, watcher, CREATOR)]
    viewer = await api_1.token(sender)
    assert (await api_1.buy(viewer, "coins_330"))["status"] == "ok"
    watcher_token = await api_2.token(watcher)
    await api_2.buy(watcher_token, "coins_65")

    giver = await RoomClient.open(first.ws, CREATOR, viewer)
    seer = await RoomClient.open(second.ws, CREATOR, watcher_token)
    assert (await giver.of_type("welcome"))["balance"] == 330
    await seer.of_type("welcome")
    channel = RoomKeys(cluster_prefix, CREATOR).channel
    # Each process holds one sharded subscription to the room, on its owner.
    assert await until_subscribers(cluster_redis, channel, 2) == 2

    ack = await giver.gift("g-1", "hand_hearts", 3)
    assert (ack["type"], ack["balance"], ack["coins"]) == ("ack", 30, 300)
    seen = await seer.of_type("gift")
    assert (seen["seq"], seen["sender"], seen["gift"], seen["count"], seen["request_id"]) == (
        ack["seq"],
        sender,
        "hand_hearts",
        3,
        "g-1",
    )
    assert (await giver.of_type("gift"))["seq"] == ack["seq"]

    creator = await api_2.token(CREATOR, "creator")
    credited = await wait_for_diamonds(api_2, creator, 150)
    assert credited["diamonds"] == 150  # 50% of 300 coins, settled on the creator's shard
    # Sender, watcher and creator: three wallets on three primaries, as the
    # cluster itself places them (CLUSTER KEYSLOT, CLUSTER SLOTS).
    assert len({await owner_of(cluster_redis, key) for key in wallets}) == 3
    assert all([await cluster_redis.exists(key) for key in wallets])

    await giver.close()
    await seer.close()
    # The last viewer of each process left: both subscriptions are gone.
    assert await until_subscribers(cluster_redis, channel, 0) == 0
    await assert_books_balance(cluster_redis, cluster_prefix)
    status, output = await reconcile_command(cluster, cluster_prefix)
    assert status == 0, output
    assert "coins spent on gifts: 300\n  credited to creators: 300\n" in output
    assert "books balance: no breach" in output


async def test_many_concurrent_sends_on_two_processes_pay_once(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster: EmbeddedCluster,  # noqa: F811
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    (first, second), (api_1, _) = pair, apis
    [racer] = users_on_other_shards("racer{}", 1, {shard_of(CREATOR)})
    viewer = await api_1.token(racer)
    await api_1.buy(viewer, "coins_65")  # exactly one rose x65
    sockets = [
        await RoomClient.open(server.ws, CREATOR, viewer)
        for server in (first, second)
        for _ in range(4)
    ]
    for socket in sockets:
        await socket.of_type("welcome")

    async def fire(socket: RoomClient, index: int) -> list[dict[str, Any]]:
        ids = [f"race-{index}-{n}" for n in range(40)]
        await asyncio.gather(
            *(socket.send({"type": "gift", "id": i, "gift": "rose", "count": 65}) for i in ids)
        )
        return [await socket.reply(i, within=30) for i in ids]

    batches = await asyncio.gather(*(fire(s, i) for i, s in enumerate(sockets)))
    replies = [reply for batch in batches for reply in batch]
    assert len(replies) == 320
    acks = [r for r in replies if r["type"] == "ack"]
    assert len(acks) == 1
    assert acks[0]["balance"] == 0
    assert {r["code"] for r in replies if r["type"] == "error"} == {"insufficient_coins"}
    wallet = await api_1.wallet(viewer)
    assert (wallet["coins"], wallet["spent"]) == (0, 65)
    for socket in sockets:
        await socket.close()
    await assert_books_balance(cluster_redis, cluster_prefix)
    status, output = await reconcile_command(cluster, cluster_prefix)
    assert status == 0, output


async def test_one_request_id_sent_twenty_times_on_two_processes_debits_once(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    (first, second), (api_1, _) = pair, apis
    [twin] = users_on_other_shards("twin{}", 1, {shard_of(CREATOR)})
    viewer = await api_1.token(twin)
    await api_1.buy(viewer, "coins_330")
    sockets = [
        await RoomClient.open(server.ws, CREATOR, viewer)
        for server in (first, second)
        for _ in range(10)
    ]
    watcher = await RoomClient.open(second.ws, CREATOR)
    for socket in [*sockets, watcher]:
        await socket.of_type("welcome")
    request = {"type": "gift", "id": "one-and-only", "gift": "hand_hearts", "count": 1}
    await asyncio.gather(*(socket.send(request) for socket in sockets))
    replies = await asyncio.gather(*(socket.reply("one-and-only") for socket in sockets))
    assert {r["type"] for r in replies} == {"ack"}
    assert sum(1 for r in replies if not r["duplicate"]) == 1
    assert {(r["balance"], r["seq"], r["coins"]) for r in replies} == {
        (230, replies[0]["seq"], 100)
    }
    assert (await api_1.wallet(viewer))["coins"] == 230
    seen = [m for m in await watcher.drain(0.5) if m.get("sender") == twin]
    assert [(m["type"], m["seq"]) for m in seen] == [("gift", replies[0]["seq"])]
    for socket in [*sockets, watcher]:
        await socket.close()
    await assert_books_balance(cluster_redis, cluster_prefix)


async def test_the_room_follows_its_slot_to_another_primary(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster: EmbeddedCluster,  # noqa: F811
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    (first, second), (_, api_2) = pair, apis
    [mover] = users_on_other_shards("mover{}", 1, {shard_of(CREATOR)})
    watcher, channel = await watching_on(first, cluster_redis, cluster_prefix)
    before = await owner_of(cluster_redis, channel)

    # The old owner drops the room's subscribers when the slot leaves it; the
    # relay finds the new owner and subscribes there.
    await move_slot_of(cluster, channel)
    after = await owner_of(cluster_redis, channel)
    assert after != before
    assert await until_subscribers(cluster_redis, channel, 1) == 1

    viewer = await api_2.token(mover)
    await api_2.buy(viewer, "coins_65")
    sender = await RoomClient.open(second.ws, CREATOR, viewer)
    ack = await sender.gift("moved-1", "rose", 5)
    assert ack["type"] == "ack"
    seen = await watcher.next(lambda m: m.get("type") == "gift" and m.get("sender") == mover)
    assert seen["seq"] == ack["seq"]
    await sender.close()
    await watcher.close()
    await assert_books_balance(cluster_redis, cluster_prefix)


async def test_scripts_are_loaded_again_on_a_primary_that_lost_them(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster: EmbeddedCluster,  # noqa: F811
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    (first, _), (api_1, _) = pair, apis
    [forgetful] = users_on_other_shards("forget{}", 1, {shard_of(CREATOR)})
    viewer = await api_1.token(forgetful)
    await api_1.buy(viewer, "coins_65")
    # What a restarted primary, or a replica just promoted, looks like: no scripts.
    for url in cluster.urls:
        node = Redis.from_url(url)
        await node.script_flush()
        await node.aclose()
    sender = await RoomClient.open(first.ws, CREATOR, viewer)
    await sender.of_type("welcome")
    # gift.lua on the sender's primary, room_event.lua on the room's, settle.lua
    # on the creator's: each answers NOSCRIPT once and is loaded again.
    ack = await sender.gift("after-flush", "rose", 5)
    assert (ack["type"], ack["balance"]) == ("ack", 60)
    await sender.close()
    await assert_books_balance(cluster_redis, cluster_prefix)


async def test_the_sweeper_finds_credits_on_every_primary(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    """A gift committed with no settler to follow it, on a primary other than the seed."""
    (_, api_2) = apis
    # Not shard 0: the servers' seed node, the one a single-node SCAN would see.
    [orphan] = users_on_other_shards("orphan{}", 1, {0, shard_of(CREATOR)})
    settings = Settings(key_prefix=cluster_prefix)
    wallets = Wallets(cluster_redis, Scripts.register(cluster_redis), settings)
    now_ms = int(time.time() * 1000)
    await wallets.grant_coins(orphan, 100, "sweeper-test", now_ms)
    rose = load_catalog().gift("rose")
    # gift.lua alone, as a process that died right after its commit leaves it.
    outcome = await wallets.send_gift(
        GiftOrder(orphan, "orphaned", rose, 40, CREATOR, CREATOR, now_ms)
    )
    assert (outcome.balance, outcome.cost) == (60, 40)
    assert [c.gift_key for c in await wallets.pending_credits(orphan)] == [outcome.gift_key]

    deadline = time.monotonic() + 15
    while True:
        pending = await wallets.pending_credits(orphan)
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert pending == []
    creator = await api_2.token(CREATOR, "creator")
    assert (await api_2.wallet(creator))["received"] >= 40
    await assert_books_balance(cluster_redis, cluster_prefix)


async def test_a_viewer_moved_to_the_other_process_mid_storm_misses_nothing(
    pair: Pair,
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    """Events numbered by room_event.lua on the room's primary, heard over SSUBSCRIBE."""
    (first, second), room, total = pair, "storm-moved", 1000
    settings = Settings(key_prefix=cluster_prefix, redis_cluster=True)
    log = RoomLog(cluster_redis, Scripts.register(cluster_redis), settings)

    async def storm() -> None:
        for n in range(1, total + 1):
            event = {"type": "gift", "room": room, "sender": "storm", "gift": "rose", "n": n}
            await log.publish(room, f"storm:{n}", event)

    viewer = await RoomClient.open(first.ws, room, max_size=None)
    epoch = (await viewer.of_type("welcome"))["epoch"]
    storming = asyncio.create_task(storm())
    seen = [(await viewer.of_type("gift", within=10))["seq"] for _ in range(250)]
    # Gone without a goodbye, mid-storm; what it had read but not looked at is lost too.
    viewer.socket.transport.abort()
    query = {"since": str(seen[-1]), "epoch": epoch}
    moved = await RoomClient.open(second.ws, room, query=query, max_size=None)
    welcome = await moved.of_type("welcome")
    assert welcome["resume"]["status"] == "ok"
    assert welcome["epoch"] == epoch
    rest = [(await moved.of_type("gift", within=20))["seq"] for _ in range(total - seen[-1])]
    await storming
    # The union of both sockets: every seq exactly once, in order, none after the last.
    assert seen + rest == list(range(1, total + 1))
    assert [m for m in await moved.drain() if m.get("type") == "gift"] == []
    await moved.close()


async def test_a_single_node_client_on_a_cluster_refuses_to_start(
    start_cluster_server: StartClusterServer,  # noqa: F811
) -> None:
    # It would see one shard: MOVED errors, a sweeper and a relay that miss the rest.
    with pytest.raises(RuntimeError, match="node of a Redis Cluster: set GIFTSTREAM_REDIS_CLUSTER"):
        await start_cluster_server(redis_cluster=False)


async def test_the_room_is_heard_again_after_its_primary_restarts(
    pair: Pair,
    apis: tuple[Api, Api],
    cluster: EmbeddedCluster,  # noqa: F811
    cluster_redis: Redis,  # noqa: F811
    cluster_prefix: str,  # noqa: F811
) -> None:
    """Runs last: it takes a primary away for a moment."""
    (first, second), (_, api_2) = pair, apis
    [restarter] = users_on_other_shards("restart{}", 1, {shard_of(CREATOR)})
    watcher, channel = await watching_on(first, cluster_redis, cluster_prefix)
    owner = await owner_of(cluster_redis, channel)
    node = next(n for n in cluster.nodes if owner.endswith(f":{n.port}"))

    # The relay's connection to that primary breaks; it reconnects when the
    # primary is back (same port, same data, same slots) and subscribes again.
    await node.stop()
    await node.start()
    assert await until_subscribers(cluster_redis, channel, 1) == 1

    # Connections pooled before the restart fail once: the store answers
    # `unavailable`, and a client retries (with the same request id).
    viewer = await api_2.token(restarter)
    for _ in range(20):
        created = await api_2.http.post(
            "/api/orders", json={"package": "coins_65"}, headers=bearer(viewer)
        )
        if created.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert created.status_code == 201, created.text
    order = created.json()["order_id"]
    for _ in range(20):
        paid = await api_2.http.post(f"/api/sandbox/pay/{order}", headers=bearer(viewer))
        if paid.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert paid.status_code == 200, paid.text
    sender = await RoomClient.open(second.ws, CREATOR, viewer)
    await sender.of_type("welcome")
    for _ in range(20):
        ack = await sender.gift("restarted-1", "rose", 3)
        if ack.get("code") != "unavailable":
            break
        await asyncio.sleep(0.2)
    assert (ack["type"], ack["balance"]) == ("ack", 62), ack
    seen = await watcher.next(lambda m: m.get("type") == "gift" and m.get("sender") == restarter)
    assert seen["seq"] == ack["seq"]
    await sender.close()
    await watcher.close()
    await assert_books_balance(cluster_redis, cluster_prefix)
