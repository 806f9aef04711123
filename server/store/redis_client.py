"""The Redis client of a process: one node, or a Redis Cluster.

Both kinds bound the connections a process opens and make callers queue for
one (up to ``QUEUE_SECONDS``) rather than open more or fail at once, and
bound every wait, so that a hung Redis turns into ``unavailable`` errors
(retry with the same request id), never into requests that hang forever.

The rest of the code is typed against ``redis.asyncio.Redis``. The cluster
client answers every command it uses: single-key commands and EVALSHA are
routed by their key's slot (every key of one script shares a hash tag, see
``server/core/keys.py``), SCRIPT LOAD goes to every primary, and ``scan_iter``
walks every primary in turn.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

from server.tuning.pipelining import MAX_IN_FLIGHT

QUEUE_SECONDS = 5.0
RESERVED_FOR_PIPELINES = MAX_IN_FLIGHT + 1
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0


class QueuingRedisCluster(RedisCluster):
    """redis-py's cluster client, with callers queuing for a connection.

    Its per-node pools raise at once when full; a semaphore of the pool's
    size in front of every command keeps each node's pool from filling.
    """

    in_flight: asyncio.Semaphore

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            await asyncio.wait_for(self.in_flight.acquire(), QUEUE_SECONDS)
        except TimeoutError:
            raise RedisConnectionError(
                f"no free Redis connection within {QUEUE_SECONDS:g} s"
            ) from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self.in_flight.release()


def connect(url: str, *, cluster: bool, pool_size: int) -> Redis:
    """A client on ``url``: a seed node of a cluster when ``cluster`` is true."""
    if not cluster:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=QUEUE_SECONDS,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
        )
        return Redis.from_pool(pool)
    client = cast(
        QueuingRedisCluster,
        QueuingRedisCluster.from_url(
            url,
            max_connections=max(pool_size, RESERVED_FOR_PIPELINES + 1),
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
        ),
    )
    # Batched script calls (pipelining.py) go round the semaphore, each
    # pipeline holding at most one connection per node, and so may the room
    # relay's pub/sub: single commands leave that many connections for them.
    client.in_flight = asyncio.Semaphore(max(1, pool_size - RESERVED_FOR_PIPELINES))
    return cast(Redis, client)


def as_cluster(redis: Redis) -> RedisCluster | None:
    """The cluster client behind ``redis``, if it is one."""
    client: object = redis
    return client if isinstance(client, RedisCluster) else None


class WrongRedisMode(RuntimeError):
    """The Redis is a cluster and the client is not, or the other way round."""


async def check_mode(redis: Redis, *, cluster: bool) -> None:
    """Refuse a client of the wrong kind: a single-node client on a cluster sees one shard."""
    info: dict[str, Any] = await redis.info("cluster")
    enabled = bool(int(info.get("cluster_enabled", 0)))
    if enabled and not cluster:
        raise WrongRedisMode(
            "this Redis is a node of a Redis Cluster: set GIFTSTREAM_REDIS_CLUSTER=1 "
            "(or --redis-cluster)"
        )
    if cluster and not enabled:
        raise WrongRedisMode(
            "GIFTSTREAM_REDIS_CLUSTER is set but this Redis is not in cluster mode"
        )
