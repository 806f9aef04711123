"""Room events between processes: Redis pub/sub, sharded on a cluster.

The process subscribes to a room's channel when its first viewer of that
room arrives and unsubscribes when the last one leaves, so it hears only the
rooms it serves. Every event, including those this process published
itself, comes back through here: one path, one order (Redis's).

On one Redis node, ``Relay`` holds one plain pub/sub connection (SUBSCRIBE).
On a Redis Cluster, ``ShardedRelay`` uses sharded pub/sub: a room's channel
``<prefix>:{r:<room>}:events`` lives in the room's slot, SPUBLISH reaches
only the primary that owns it, and the process holds one SSUBSCRIBE
connection per primary that owns a room it serves. redis-py's own cluster
pub/sub polls its per-node connections in turn, each with the whole read
timeout, which would delay one node's events behind another's quiet; here
each node's connection has a reader of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, SlotNotCoveredError

from server.keys import RoomKeys
from server.room_log import unpack_published
from server.wallet import FailureTally

log = logging.getLogger(__name__)
RETRY_SECONDS = 0.5
YIELD_EVERY = 32


class Relay:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self._prefix = key_prefix
        # Where events go: the process's Hub sets itself here.
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda room, event: None
        self._rooms_by_channel: dict[bytes, str] = {}
        # Set while at least one room is subscribed: redis-py cannot read a
        # pub/sub connection that has no subscription yet.
        self._active = asyncio.Event()

    def _channel(self, room: str) -> str:
        return RoomKeys(self._prefix, room).channel

    async def subscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel[channel.encode()] = room
        await self._pubsub.subscribe(channel)
        self._active.set()

    async def unsubscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel.pop(channel.encode(), None)
        if not self._rooms_by_channel:
            self._active.clear()
        try:
            await self._pubsub.unsubscribe(channel)
        except RedisError:
            log.warning("unsubscribe failed", extra={"room": room})

    def _dispatch(self, message: dict[str, Any]) -> None:
        room = self._rooms_by_channel.get(message["channel"])
        if room is None:
            return
        try:
            event = unpack_published(message["data"])
        except (ValueError, TypeError):
            log.error("undecodable room event", extra={"room": room})
            return
        self.on_event(room, event)

    async def run(self) -> None:
        """Read until cancelled; reconnects (and resubscribes) after Redis errors."""
        handled = 0
        while True:
            try:
                await self._active.wait()
                message = await self._pubsub.get_message(timeout=1.0)
            except RedisError:
                FailureTally.count += 1
                log.warning("room relay lost Redis; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if message is not None and message.get("type") == "message":
                self._dispatch(message)
                handled += 1
                if handled % YIELD_EVERY == 0:
                    # Buffered messages are read without ever waiting: let
                    # gifts, acks and flushes run between long runs of them.
                    await asyncio.sleep(0)

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]


def _deliver(
    rooms_by_channel: dict[bytes, str],
    on_event: Callable[[str, dict[str, Any]], None],
    channel: bytes,
    data: bytes,
) -> None:
    room = rooms_by_channel.get(channel)
    if room is None:
        return
    try:
        event = unpack_published(data)
    except (ValueError, TypeError):
        log.error("undecodable room event", extra={"room": room})
        return
    on_event(room, event)


class _ShardPubSub(PubSub):
    async def _resubscribe_shard_channels(self) -> None:
        # After a reconnect redis-py resubscribes every channel in one
        # SSUBSCRIBE, which a cluster refuses (CROSSSLOT) when the rooms of
        # one node sit in different slots: one command per channel instead.
        for channel in list(self.shard_channels):
            await self.ssubscribe(channel)


class _NodeLink:
    """One primary's SSUBSCRIBE connection, and the task that reads it."""

    def __init__(
        self,
        node: ClusterNode,
        on_message: Callable[[bytes, bytes], None],
        on_lost: Callable[[_NodeLink, bytes | None], None],
    ) -> None:
        self.name = node.name
        # The node's own connection recipe (address, credentials, TLS), on a
        # connection of its own outside the cluster client's pool.
        pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        self._client = Redis(connection_pool=pool)
        self._pubsub = _ShardPubSub(pool)
        self.channels: set[bytes] = set()
        self._on_message = on_message
        self._on_lost = on_lost
        self._reader: asyncio.Task[None] | None = None

    async def add(self, channel: bytes) -> None:
        await self._pubsub.ssubscribe(channel)
        self.channels.add(channel)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def drop(self, channel: bytes) -> None:
        # Forgotten first, so that the confirmation reads as ours, not as the
        # server dropping the channel (what it does when a slot moves).
        self.channels.discard(channel)
        try:
            await self._pubsub.sunsubscribe(channel)
        except RedisError:
            log.warning("sunsubscribe failed", extra={"node": self.name})

    async def _read(self) -> None:
        handled = 0
        try:
            while True:
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                kind, channel = message["type"], message["channel"]
                if kind == "smessage":
                    self._on_message(channel, message["data"])
                    handled += 1
                    if handled % YIELD_EVERY == 0:  # as in Relay.run
                        await asyncio.sleep(0)
                elif kind == "sunsubscribe" and channel in self.channels:
                    # The server dropped it: its slot has moved to another node.
                    self.channels.discard(channel)
                    self._on_lost(self, channel)
        except (RedisError, OSError):
            FailureTally.count += 1
            log.warning("room relay lost a cluster node", extra={"node": self.name})
            self._on_lost(self, None)

    async def close(self) -> None:
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


class ShardedRelay:
    """Room events on a Redis Cluster: SSUBSCRIBE on the primary owning each room's slot.

    When a node's connection fails (a failover) or the node drops a channel
    (its slot moved), the channels are routed again from a fresh slot map,
    retried every ``RETRY_SECONDS`` until it succeeds.
    """

    def __init__(self, cluster: RedisCluster, key_prefix: str) -> None:
        self._cluster = cluster
        self._prefix = key_prefix
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda room, event: None
        # What the process wants to hear, and which node each channel is on.
        self._rooms_by_channel: dict[bytes, str] = {}
        self._links: dict[str, _NodeLink] = {}
        # Subscription changes one at a time: the maps above stay consistent.
        self._lock = asyncio.Lock()
        self._reroute = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()

    def _channel(self, room: str) -> bytes:
        return RoomKeys(self._prefix, room).channel.encode()

    def _link_of(self, channel: bytes) -> _NodeLink | None:
        return next((link for link in self._links.values() if channel in link.channels), None)

    def node_of(self, room: str) -> str | None:
        """The node (``host:port``) this process hears the room from, if subscribed."""
        link = self._link_of(self._channel(room))
        return None if link is None else link.name

    async def subscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel[channel] = room
        async with self._lock:
            try:
                await self._route(channel)
            except (RedisError, RedisClusterException):
                # A stale slot map (MOVED) or a node gone: look again, once.
                await self._cluster.nodes_manager.initialize()
                await self._route(channel)

    async def unsubscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel.pop(channel, None)
        async with self._lock:
            link = self._link_of(channel)
            if link is not None:
                await link.drop(channel)
                await self._close_if_idle(link)

    async def _route(self, channel: bytes) -> None:
        """Subscribe ``channel`` on the node that owns its slot now (no-op if there)."""
        await self._cluster.initialize()
        node = self._cluster.get_node_from_key(channel.decode())
        if node is None:
            raise SlotNotCoveredError(f"no node serves the slot of {channel!r}")
        current = self._link_of(channel)
        if current is not None and current.name == node.name:
            return
        if current is not None:
            await current.drop(channel)
            await self._close_if_idle(current)
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = _NodeLink(node, self._on_message, self._on_lost)
        await link.add(channel)

    async def _close_if_idle(self, link: _NodeLink) -> None:
        if not link.channels and self._links.get(link.name) is link:
            del self._links[link.name]
            await link.close()

    def _on_message(self, channel: bytes, data: bytes) -> None:
        _deliver(self._rooms_by_channel, self.on_event, channel, data)

    def _on_lost(self, link: _NodeLink, channel: bytes | None) -> None:
        if channel is None and self._links.get(link.name) is link:
            # The whole connection is gone: its channels go elsewhere.
            del self._links[link.name]
            task = asyncio.create_task(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._reroute.set()

    async def run(self) -> None:
        """Route lost channels again until cancelled."""
        while True:
            await self._reroute.wait()
            self._reroute.clear()
            try:
                await self._cluster.nodes_manager.initialize()
                async with self._lock:
                    for channel in list(self._rooms_by_channel):
                        await self._route(channel)
                    # A node whose every channel moved elsewhere is not needed.
                    for link in list(self._links.values()):
                        await self._close_if_idle(link)
            except (RedisError, RedisClusterException):
                FailureTally.count += 1
                log.warning("room relay cannot reach the cluster; retrying")
                self._reroute.set()
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
