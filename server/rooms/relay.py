"""Room events between processes: Redis pub/sub, sharded on a cluster.

The process subscribes to a room's channel when its first viewer of that
room arrives and unsubscribes when the last one leaves, so it hears only the
rooms it serves. Every event, including those this process published
itself, comes back through here: one path, one order (Redis's).

On one Redis node, ``Relay`` holds one plain pub/sub connection (SUBSCRIBE),
read by a protocol of ours as messages arrive.
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
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import hiredis
import msgpack
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisClusterException, RedisError, SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.core.keys import RoomKeys
from server.rooms.room_log import unpack_published_all
from server.store.calls import FailureTally
from server.tuning.pipelining import pack_command
from server.tuning.taken_connection import NOT_ENOUGH_DATA, TakenConnection, take_connection

log = logging.getLogger(__name__)
RETRY_SECONDS = 0.5
# As long as Redis may take to confirm a SUBSCRIBE (the client's socket timeout).
SUBSCRIBE_TIMEOUT = 5.0
YIELD_EVERY = 32


class Relay:
    """Room events on one Redis node: SUBSCRIBE on a connection read as messages arrive.

    The connection is redis-py's, taken over (``taken_connection.py``): each
    published message is parsed and handed to ``on_event`` in the transport's
    own callback. redis-py's ``PubSub.get_message`` cost about 27 us of CPU
    a message here, and a storm brings thousands a second.

    ``subscribe`` returns once Redis has confirmed the subscription, so that
    what a joining viewer reads from the room's history next cannot miss an
    event published in between. When the connection is lost, ``run`` opens
    another and subscribes every room again, retrying every
    ``RETRY_SECONDS``; events published in between do not reach this process
    (viewers who resume by seq get them from the room's history).
    """

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._pool = redis.connection_pool
        self._prefix = key_prefix
        # Where events go: the process's Hub sets itself here.
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda room, event: None
        self._rooms_by_channel: dict[bytes, str] = {}
        self._connection: TakenConnection | None = None
        self._opening: asyncio.Task[TakenConnection] | None = None
        # Subscriptions written and not yet confirmed, oldest first per channel.
        self._confirming: dict[bytes, collections.deque[asyncio.Future[None]]] = {}
        # Lost connections, to be closed by ``run`` (closing one is a coroutine).
        self._dead: list[TakenConnection] = []
        # Set once a room is wanted: there is nothing to open a connection for before.
        self._wanted = asyncio.Event()
        self._lost = asyncio.Event()

    def _channel(self, room: str) -> bytes:
        return RoomKeys(self._prefix, room).channel.encode()

    async def subscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel[channel] = room
        self._wanted.set()
        try:
            connection = await self._open()
            confirmed = asyncio.get_running_loop().create_future()
            self._confirming.setdefault(channel, collections.deque()).append(confirmed)
            connection.transport.write(pack_command(("SUBSCRIBE", channel)))
            try:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                    await confirmed
            except TimeoutError:
                raise RedisTimeoutError(
                    f"Redis did not confirm a subscription within {SUBSCRIBE_TIMEOUT:g} s"
                ) from None
        except BaseException:
            if self._rooms_by_channel.get(channel) == room:
                del self._rooms_by_channel[channel]
            raise

    async def unsubscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel.pop(channel, None)
        if self._connection is not None:
            self._connection.transport.write(pack_command(("UNSUBSCRIBE", channel)))

    async def run(self) -> None:
        """Keep the connection open until cancelled: reopen it (and resubscribe) when lost."""
        await self._wanted.wait()
        while True:
            try:
                await self._open()
            except (RedisError, OSError):
                FailureTally.count += 1
                log.warning("room relay cannot reach Redis; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await self._lost.wait()
            await self._release_dead()
            FailureTally.count += 1
            log.warning("room relay lost Redis; retrying")

    async def _open(self) -> TakenConnection:
        """The connection, opened now if it is not; concurrent callers share one attempt."""
        if self._connection is not None:
            return self._connection
        if self._opening is None:
            self._opening = asyncio.create_task(self._connect())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, task: asyncio.Task[TakenConnection]) -> None:
        self._opening = None
        if not task.cancelled():
            task.exception()  # its waiters get it; here it is only marked seen

    async def _connect(self) -> TakenConnection:
        connection = await take_connection(self._pool, self._received, self._gone)
        self._lost.clear()
        self._connection = connection
        channels = list(self._rooms_by_channel)
        if channels:  # the rooms heard before a loss, all again
            connection.transport.write(pack_command(("SUBSCRIBE", *channels)))
        return connection

    def _received(self, transport: asyncio.Transport, data: bytes) -> None:
        connection = self._connection
        if connection is None or transport is not connection.transport:
            return
        reader = connection.reader
        reader.feed(data)
        try:
            message = reader.gets()
            while message is not NOT_ENOUGH_DATA:
                if isinstance(message, list) and len(message) == 3:
                    kind, channel, payload = message
                    if kind == b"message":
                        _deliver(self._rooms_by_channel, self.on_event, channel, payload)
                    elif kind == b"subscribe":
                        self._confirm(channel)
                elif isinstance(message, Exception):
                    log.error("room relay: Redis refused a command: %s", message)
                message = reader.gets()
        except (InvalidResponse, hiredis.ProtocolError) as exc:
            log.error("room relay: Redis spoke out of turn: %s", exc)
            self._gone(transport)

    def _confirm(self, channel: bytes) -> None:
        waiting = self._confirming.get(channel)
        while waiting:
            confirmed = waiting.popleft()
            if not confirmed.done():
                confirmed.set_result(None)
                break
        if not waiting:
            self._confirming.pop(channel, None)

    def _gone(self, transport: asyncio.Transport, exc: Exception | None = None) -> None:
        connection = self._connection
        if connection is None or transport is not connection.transport:
            return
        self._connection = None
        self._dead.append(connection)
        transport.abort()
        confirming, self._confirming = self._confirming, {}
        for waiting in confirming.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(RedisConnectionError("Redis closed the connection"))
        self._lost.set()

    async def _release_dead(self) -> None:
        dead, self._dead = self._dead, []
        for connection in dead:
            await connection.release()

    async def close(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(BaseException):
                await self._opening
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.release()
        await self._release_dead()


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
        events = unpack_published_all(data)
    except (ValueError, TypeError, msgpack.UnpackException):
        log.error("undecodable room event", extra={"room": room})
        return
    for event in events:
        try:
            on_event(room, event)
        except Exception:  # a bug of ours: this event is lost, not the connection
            log.exception("room event not delivered", extra={"room": room})


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
            await self._pubsub.aclose()
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
