"""The real parts of the cluster tests: a 3-primary Valkey Cluster and servers on it.

- ``cluster`` (session): an ``EmbeddedCluster`` in a temporary directory,
  started the first time a test asks for it (so only the cluster tests pay
  for it) and stopped at the end of the session.
- ``cluster_redis``: a cluster client on it (bytes in and out).
- ``cluster_prefix`` (module): a key prefix of its own per test module.
- ``start_cluster_server`` (module): ``await start_cluster_server(**settings)``
  runs a real ``python -m server serve --port 0`` on the cluster
  (``GIFTSTREAM_REDIS_CLUSTER=1``) and returns once ``/readyz`` answers; the
  servers serve every test of the module (starting them is the slow part),
  so tests keep apart by using users of their own.

Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from server.ops.embedded_cluster import EmbeddedCluster, slot_ranges
from server.store.redis_client import connect
from tests.conftest import ServerProcess, launch_server, stop_servers

PRIMARIES = 3
StartClusterServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(
        tmp_path_factory.mktemp("cluster"), primaries=PRIMARIES, appendfsync="everysec"
    ) as running:
        yield running


@pytest.fixture
async def cluster_redis(cluster: EmbeddedCluster) -> AsyncIterator[Redis]:
    client = connect(cluster.url, cluster=True, pool_size=16)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def cluster_prefix() -> str:
    # No clean-up: the cluster is this session's own, in a temporary directory.
    return "c" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
async def start_cluster_server(
    cluster: EmbeddedCluster,
    cluster_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[StartClusterServer]:
    """Servers for a whole test module, sharing ``cluster_prefix``: users keep tests apart."""
    started: list[ServerProcess] = []
    failed_before = request.session.testsfailed

    async def start(**settings: object) -> ServerProcess:
        data_dir = tmp_path_factory.mktemp("server-data")
        settings = {"redis_cluster": True, **settings}
        return await launch_server(started, cluster.url, cluster_prefix, data_dir, settings)

    yield start
    await stop_servers(started, request.session.testsfailed != failed_before)


# ---------------------------------------------------------------- where keys live


def shard_of(user: str) -> int:
    """Which primary (0, 1 or 2, by slot range) holds ``user``'s wallet, computed here."""
    slot = key_slot(f"{{w:{user}}}".encode())
    return next(i for i, (low, high) in enumerate(slot_ranges(PRIMARIES)) if low <= slot <= high)


def users_on_other_shards(template: str, count: int, taken: set[int]) -> list[str]:
    """``count`` user ids (``template`` with a number) on distinct shards, none in ``taken``."""
    found: list[str] = []
    used = set(taken)
    for number in range(1000):
        user = template.format(number)
        if shard_of(user) not in used:
            found.append(user)
            used.add(shard_of(user))
            if len(found) == count:
                return found
    raise AssertionError(f"fewer than {count} free shards")


async def owner_of(redis: Redis, key: str) -> str:
    """``host:port`` of the primary that owns ``key``'s slot, as the cluster says."""
    client: Any = redis
    assert isinstance(client, RedisCluster)
    slot = int(await client.cluster_keyslot(key))
    slots: Any = await client.cluster_slots()
    for (low, high), owners in slots.items():
        if low <= slot <= high:
            host, port = owners["primary"]
            return f"{host}:{port}"
    raise AssertionError(f"slot {slot} of {key} has no owner")


# ---------------------------------------------------------------- resharding


async def _node(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True)


async def _command(node: Redis, *args: str | int) -> Any:
    return await node.execute_command(*args)  # type: ignore[no-untyped-call]


async def move_slot_of(cluster: EmbeddedCluster, key: str) -> tuple[str, str]:
    """Move ``key``'s slot, keys and all, to another primary: what a resharding does.

    Returns (old owner, new owner) as ``host:port``.
    """
    nodes = [await _node(url) for url in cluster.urls]
    try:
        slot = int(await _command(nodes[0], "CLUSTER", "KEYSLOT", key))
        ids = [await _command(node, "CLUSTER", "MYID") for node in nodes]
        source = next(i for i, (lo, hi) in enumerate(slot_ranges(PRIMARIES)) if lo <= slot <= hi)
        target = (source + 1) % PRIMARIES
        src, dst = nodes[source], nodes[target]
        await _command(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        await _command(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        while keys := await _command(src, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            port = cluster.nodes[target].port
            await _command(src, "MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *keys)
        for node in (dst, src, *(n for n in nodes if n not in (src, dst))):
            await _command(node, "CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        return cluster.nodes[source].url, cluster.nodes[target].url
    finally:
        for node in nodes:
            await node.aclose()
