"""A Redis connection opened by redis-py, then read and written by a protocol of ours.

redis-py opens it, so the address, TLS, AUTH, HELLO and SELECT are exactly
what the process's client is configured with. Its transport is then handed
to an ``asyncio.Protocol`` of ours, which parses replies with hiredis in the
transport's own callback, as their bytes arrive: no task, stream reader or
coroutine per reply. The script batches (``reply_line.py``) and the room
relay (``relay.py``) read this way; on them, redis-py's per-reply layers
were a large share of a gift storm's CPU (docs/benchmarks.md).

The connection never goes back to a pool; ``release`` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis
from redis._parsers import BaseParser
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisError

# What ``hiredis.Reader.gets`` returns while a reply is incomplete.
NOT_ENOUGH_DATA = object()


@dataclass(eq=False)
class TakenConnection:
    transport: asyncio.Transport
    reader: hiredis.Reader
    # redis-py's connection object: kept so that its stream writer is not
    # collected (which would close the transport), and closed by ``release``.
    _connection: AbstractConnection

    async def release(self) -> None:
        """Close the connection (again, harmlessly, if it is closed already)."""
        self.transport.abort()
        with contextlib.suppress(RedisError, OSError):
            await self._connection.disconnect(nowait=True)


# What the owner of a taken connection hears: its bytes, and its loss.
OnData = Callable[[asyncio.Transport, bytes], None]
OnLost = Callable[[asyncio.Transport, Exception | None], None]


async def take_connection(
    pool: ConnectionPool, on_data: OnData, on_lost: OnLost
) -> TakenConnection:
    """Open a connection as ``pool`` would; from then on its bytes and loss go to
    ``on_data`` and ``on_lost``, each with the transport (to tell an old one apart)."""
    connection: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
    await connection.connect()  # type: ignore[no-untyped-call]
    writer: asyncio.StreamWriter | None = getattr(connection, "_writer", None)
    stream: asyncio.StreamReader | None = getattr(connection, "_reader", None)
    if writer is None or stream is None or len(getattr(stream, "_buffer", b"")) > 0:
        # A redis-py that no longer keeps its streams where we look, or a
        # handshake that left bytes unread: fail loudly, not subtly.
        with contextlib.suppress(RedisError, OSError):
            await connection.disconnect(nowait=True)
        raise RedisConnectionError("cannot take over the Redis connection's transport")
    options: dict[str, Any] = {
        "protocolError": InvalidResponse,
        "replyError": BaseParser.parse_error,
        "notEnoughData": NOT_ENOUGH_DATA,
    }
    if connection.encoder.decode_responses:
        options["encoding"] = connection.encoder.encoding
        options["errors"] = connection.encoder.encoding_errors
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    transport.set_protocol(_Forwarder(transport, on_data, on_lost))
    return TakenConnection(transport, hiredis.Reader(**options), connection)


class _Forwarder(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, on_data: OnData, on_lost: OnLost) -> None:
        self._transport = transport
        self._on_data = on_data
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._on_data(self._transport, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self._transport, exc)
