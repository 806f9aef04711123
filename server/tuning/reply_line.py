"""One Redis connection for pipelined batches, whose replies are read as they arrive.

``AutoPipeline`` writes each batch of calls here in one write. Redis
answers in order, so replies are matched to batches first in, first out,
and parsed (by hiredis) in the transport's own callback the moment their
bytes arrive. A batch costs one write and one timer: no task, no pooled
connection, no timeout context, no coroutine per reply.

Why it matters: under a paced gift storm the time of an ack was mostly
turns of the event loop, not Redis. A batch sent the old way (a task that
took a pooled connection, checked it, wrote, and awaited each reply) spent
four or five turns of a busy loop before its callers woke; here it is one.
See docs/benchmarks.md, the run "a line to Redis for the scripts, a lean relay".

The connection is opened by redis-py and then read by a protocol of ours
(``taken_connection.py``); it never goes back to a pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.tuning.taken_connection import NOT_ENOUGH_DATA, TakenConnection, take_connection

log = logging.getLogger(__name__)

# What a batch's owner is told: every reply, in order, or why there are none.
Outcome = list[Any] | RedisError
OnReplies = Callable[[Outcome], None]


@dataclass(slots=True)
class _Batch:
    expected: int
    replies: list[Any]
    on_replies: OnReplies
    deadline: asyncio.TimerHandle


class ReplyLine:
    """A pipelined connection: ``send`` a batch now, hear its replies when they come."""

    def __init__(self, redis: Redis, reply_timeout: float) -> None:
        self._redis = redis
        self._reply_timeout = reply_timeout
        self._waiting: collections.deque[_Batch] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._reader: hiredis.Reader | None = None
        self._connection: TakenConnection | None = None
        self._opening: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def open(self) -> None:
        """Connect, unless connected; concurrent callers share one attempt."""
        if self._closed:
            raise RedisConnectionError("the Redis line is closed")
        if self._transport is not None:
            return
        if self._opening is None:
            self._opening = asyncio.create_task(self._connect())
            self._opening.add_done_callback(self._opened)
        await asyncio.shield(self._opening)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._opening = None
        if not task.cancelled():
            task.exception()  # its waiters get it; here it is only marked seen

    async def _connect(self) -> None:
        await self._release_connection()
        connection = await take_connection(self._redis.connection_pool, self._received, self._lost)
        self._connection = connection
        if self._closed:
            await self._release_connection()
            raise RedisConnectionError("the Redis line is closed")
        self._reader = connection.reader
        self._transport = connection.transport

    def send(self, payload: bytes, expected: int, on_replies: OnReplies) -> None:
        """Write ``payload`` (``expected`` commands); ``on_replies`` hears the outcome once.

        The line must be open. A line lost before every reply came fails all
        its batches with the same error.
        """
        transport = self._transport
        if transport is None:
            on_replies(RedisConnectionError("the Redis line is not open"))
            return
        deadline = asyncio.get_running_loop().call_later(
            self._reply_timeout, self._expired, transport
        )
        self._waiting.append(_Batch(expected, [], on_replies, deadline))
        transport.write(payload)

    def _received(self, transport: asyncio.Transport, data: bytes) -> None:
        if transport is not self._transport or self._reader is None:
            return
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        try:
            reply = reader.gets()
            while reply is not NOT_ENOUGH_DATA:
                if isinstance(reply, hiredis.PushNotification):
                    # Nothing subscribes on this connection; a push is not a reply.
                    reply = reader.gets()
                    continue
                if not waiting:
                    raise InvalidResponse("a reply that no call asked for")
                batch = waiting[0]
                batch.replies.append(reply)
                if len(batch.replies) == batch.expected:
                    waiting.popleft()
                    batch.deadline.cancel()
                    batch.on_replies(batch.replies)
                reply = reader.gets()
        except (InvalidResponse, hiredis.ProtocolError) as exc:
            self._drop(transport, RedisConnectionError(f"Redis spoke out of turn: {exc}"))

    def _lost(self, transport: asyncio.Transport, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self._drop(transport, RedisConnectionError(f"Redis closed the connection{reason}"))

    def _expired(self, transport: asyncio.Transport) -> None:
        self._drop(
            transport,
            RedisTimeoutError(f"no reply from Redis within {self._reply_timeout:g} s"),
        )

    def _drop(self, transport: asyncio.Transport, error: RedisError) -> None:
        """Give up on ``transport``: every batch still waiting on it fails with ``error``."""
        if transport is not self._transport:
            return
        self._transport = None
        self._reader = None
        transport.abort()
        waiting, self._waiting = self._waiting, collections.deque()
        for batch in waiting:
            batch.deadline.cancel()
            batch.on_replies(error)
        if waiting:
            log.warning("Redis line dropped", extra={"batches": len(waiting), "error": str(error)})

    async def _release_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.release()

    async def close(self) -> None:
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(BaseException):
                await self._opening
        if self._transport is not None:
            self._drop(self._transport, RedisConnectionError("server stopping"))
        await self._release_connection()
