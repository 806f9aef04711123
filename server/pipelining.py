"""Script calls made at the same moment share one round trip to Redis.

In a gift storm thousands of sockets each want ``gift.lua``, then
``room_event.lua``, then ``settle.lua``. Sent one by one, every call costs a
round trip and a pooled connection, and Redis spends more time reading
small packets than running scripts. ``AutoPipeline`` gathers the calls made
within one turn of the event loop (and while earlier batches are in
flight) and sends them as one pipeline of ``EVALSHA``: the same scripts,
the same atomicity (each script is still atomic on its own; a pipeline is
not a transaction and does not need to be), far fewer round trips.

A quiet server pays nothing for this: a lone call is sent on the next turn
of the loop, alone. A batch that fails on the wire fails every call in it
with the same error, which callers already treat as "outcome unknown,
retry with the same request id" (``unavailable``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
# As long as one Redis reply may take (the client's socket timeout).
REPLY_TIMEOUT_SECONDS = 5.0
MAX_BATCH = 512
MAX_IN_FLIGHT = 4


class ScriptLike(Protocol):
    """What is needed of a registered script: its text and its SHA1."""

    @property
    def sha(self) -> str: ...

    @property
    def script(self) -> bytes | str | memoryview: ...


# Makes a deferred call's KEYS and ARGV when its batch goes out.
Sealer = Callable[[], tuple[Sequence[Any], Sequence[Any]]]


@dataclass(slots=True)
class _Call:
    command: tuple[Any, ...]
    # The script an EVALSHA runs, to load it again if Redis forgot it.
    script: ScriptLike | None
    future: asyncio.Future[Any]
    # For a deferred call: builds its keys and args when its batch starts.
    seal: Sealer | None = None


class AutoPipeline:
    def __init__(
        self, redis: Redis, max_batch: int = MAX_BATCH, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[_Call] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        # For /metrics and the benchmarks: how well calls are being shared.
        self.batches = 0
        self.calls = 0

    async def run(self, script: ScriptLike, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``script`` with ``keys`` and ``args`` in the next batch; its reply."""
        return await self._add(("EVALSHA", script.sha, len(keys), *keys, *args), script)

    async def command(self, *command: Any) -> Any:
        """Any other single command (``HDEL key field``, say) in the next batch."""
        return await self._add(command, None)

    def defer(self, script: ScriptLike, seal: Sealer) -> asyncio.Future[Any]:
        """A call of ``script`` whose keys and args ``seal`` gives when its batch starts.

        Until then the caller may keep adding to what ``seal`` will return:
        a room's events arriving while earlier batches are out all go in one
        call. The future gets the reply.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call((), script, future, seal))
        self._schedule()
        return future

    async def _add(self, command: tuple[Any, ...], script: ScriptLike | None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(command, script, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._scheduled or not self._pending or self._in_flight >= self._max_in_flight:
            return
        self._scheduled = True
        # Not now: the other calls of this turn of the loop join the batch.
        asyncio.get_running_loop().call_soon(self._start_batch)

    def _start_batch(self) -> None:
        self._scheduled = False
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        if not batch:
            return
        for call in [call for call in batch if call.seal is not None]:
            try:
                self._seal(call)
            except Exception as exc:  # a bug of ours: that call fails, not the batch
                log.exception("a deferred call could not be built")
                _settle(call.future, RedisError(f"call not built: {type(exc).__name__}"))
                batch.remove(call)
        if not batch:
            self._schedule()
            return
        self._in_flight += 1
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._batch_done)

    @staticmethod
    def _seal(call: _Call) -> None:
        assert call.seal is not None
        assert call.script is not None
        keys, args = call.seal()
        call.command = ("EVALSHA", call.script.sha, len(keys), *keys, *args)
        call.seal = None

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        self._schedule()

    async def _send(self, batch: list[_Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            replies = await self._pipeline(batch)
        except (RedisError, OSError) as exc:
            # Callers turn RedisError into `unavailable`; a bare OSError too.
            error = exc if isinstance(exc, RedisError) else RedisError(f"{exc!r}")
            for call in batch:
                _settle(call.future, error)
            return
        except Exception as exc:  # a client bug must not leave callers waiting
            log.exception("script batch failed")
            for call in batch:
                _settle(call.future, RedisError(f"batch failed: {type(exc).__name__}"))
            return
        except BaseException as exc:  # cancelled at shutdown: nobody waits forever
            for call in batch:
                _settle(call.future, RedisError(f"batch abandoned: {type(exc).__name__}"))
            raise
        missing = [call for call, reply in zip(batch, replies, strict=True) if _noscript(reply)]
        if missing:
            # Redis restarted (or failed over) and forgot the scripts: load
            # them and run again just the calls that did not run.
            try:
                sources = {call.script.sha: call.script.script for call in missing if call.script}
                for source in sources.values():
                    await self._redis.script_load(source)
                again = await self._pipeline(missing)
            except (RedisError, OSError) as exc:
                again = [exc] * len(missing)
            retried = dict(zip(map(id, missing), again, strict=True))
            replies = [
                retried.get(id(call), reply) for call, reply in zip(batch, replies, strict=True)
            ]
        for call, reply in zip(batch, replies, strict=True):
            _settle(call.future, reply)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        if isinstance(self._redis, RedisCluster):  # commands routed by slot
            pipe = self._redis.pipeline(transaction=False)
            for call in batch:
                pipe.execute_command(*call.command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies
        return await self._on_one_connection(batch)

    async def _on_one_connection(self, batch: list[_Call]) -> list[Any]:
        """The batch as one write of RESP and one read of its replies.

        What redis-py's pipeline does, without its per-command bookkeeping
        and a timeout per reply, which were a quarter of a storm's CPU.
        """
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
                await connection.send_packed_command(
                    b"".join(map(pack_command, (call.command for call in batch)))
                )
                replies: list[Any] = []
                for _ in batch:
                    try:
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as error:  # this call's error; read on
                        replies.append(error)
            return replies
        except TimeoutError as exc:
            await connection.disconnect(nowait=True)
            raise RedisTimeoutError(f"no reply within {REPLY_TIMEOUT_SECONDS:g} s") from exc
        except BaseException:
            # Replies may be left unread: this connection cannot be reused.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for call in self._pending:
            _settle(call.future, RedisError("server stopping"))
        self._pending.clear()


def pack_command(command: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings (str, bytes, int or float).

    hiredis's encoder, in C: the Python one it replaced was 17 us a call
    here against 4, and a paced storm packs four calls per gift.
    """
    try:  # it refuses a bool, as it should: no Redis argument is one
        packed: bytes = hiredis.pack_command(command)
    except TypeError as exc:
        raise TypeError(f"not a Redis argument in {command[0]!r}: {exc}") from exc
    return packed


def _noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)


def _settle(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():  # its caller gave up (its socket closed)
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)


class BatchedScript:
    """A registered script whose calls go through an ``AutoPipeline``.

    Called like redis-py's ``AsyncScript`` (``script(keys=..., args=...)``),
    so the code that moves money reads the same with or without batching.
    """

    def __init__(self, script: ScriptLike, pipeline: AutoPipeline) -> None:
        self.script = script
        self._pipeline = pipeline

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return await self._pipeline.run(self.script, keys, args)
