"""Script calls made at the same moment share one round trip to Redis.

In a gift storm thousands of sockets each want ``gift.lua``, then
``room_event.lua``, then ``settle.lua``. Sent one by one, every call costs a
round trip and a pooled connection, and Redis spends more time reading
small packets than running scripts. ``AutoPipeline`` gathers the calls made
within one turn of the event loop (and while earlier batches are in
flight) and sends them as one pipeline of ``EVALSHA``: the same scripts,
the same atomicity (each script is still atomic on its own; a pipeline is
not a transaction and does not need to be), far fewer round trips.

On one Redis node the batches go down one connection of their own, a
``ReplyLine``, whose replies are parsed as they arrive; on a cluster,
through redis-py's pipeline, which routes each call to its slot's node. At
most ``MAX_IN_FLIGHT`` batches are out at once: while they are, new calls
gather into the next, so a busy server sends fewer, larger batches.

A quiet server pays nothing for this: a lone call is sent on the next turn
of the loop, alone. A batch that fails on the wire fails every call in it
with the same error, which callers already treat as "outcome unknown,
retry with the same request id" (``unavailable``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from server.tuning.reply_line import Outcome, ReplyLine

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
    # False once the call was run again after Redis forgot its script.
    fresh: bool = True


class AutoPipeline:
    def __init__(
        self,
        redis: Redis,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        reply_timeout: float = REPLY_TIMEOUT_SECONDS,
    ) -> None:
        self._redis = redis
        # One node: batches go down one line read as replies arrive. A
        # cluster: redis-py's pipeline, which routes each call by slot.
        self._line = None if isinstance(redis, RedisCluster) else ReplyLine(redis, reply_timeout)
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

    def queue(self, *command: Any) -> asyncio.Future[Any]:
        """A single command put in the next batch now, ahead of every call
        made after it (Redis runs a batch's calls in order); the future
        gets its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(command, None, future))
        self._schedule()
        return future

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
        self.batches += 1
        self.calls += len(batch)
        if self._line is not None and self._line.is_open:
            self._write(self._line, batch)
        else:  # a cluster, or a line still to open: a task of its own
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _seal(call: _Call) -> None:
        assert call.seal is not None
        assert call.script is not None
        keys, args = call.seal()
        call.command = ("EVALSHA", call.script.sha, len(keys), *keys, *args)
        call.seal = None

    def _write(self, line: ReplyLine, batch: list[_Call]) -> None:
        try:
            payload = b"".join([pack_command(call.command) for call in batch])
        except TypeError as exc:  # an argument Redis cannot take: a bug of ours
            log.exception("script batch could not be packed")
            self._replied(batch, RedisError(f"batch not packed: {exc}"))
            return
        line.send(payload, len(batch), lambda outcome: self._replied(batch, outcome))

    async def _send(self, batch: list[_Call]) -> None:
        try:
            if self._line is not None:
                await self._line.open()
                self._write(self._line, batch)
                return
            replies: Outcome = await self._on_cluster(batch)
        except (RedisError, OSError) as exc:
            # Callers turn RedisError into `unavailable`; a bare OSError too.
            replies = exc if isinstance(exc, RedisError) else RedisError(f"{exc!r}")
        except Exception as exc:  # a client bug must not leave callers waiting
            log.exception("script batch failed")
            replies = RedisError(f"batch failed: {type(exc).__name__}")
        except BaseException as exc:  # cancelled at shutdown: nobody waits forever
            self._replied(batch, RedisError(f"batch abandoned: {type(exc).__name__}"))
            raise
        self._replied(batch, replies)

    def _replied(self, batch: list[_Call], outcome: Outcome) -> None:
        """A batch is over: each call gets its reply (or the batch's error)."""
        self._in_flight -= 1
        if isinstance(outcome, RedisError):
            for call in batch:
                _settle(call.future, outcome)
        else:
            forgotten: list[_Call] = []
            for call, reply in zip(batch, outcome, strict=True):
                if isinstance(reply, NoScriptError) and call.script is not None and call.fresh:
                    forgotten.append(call)
                else:
                    _settle(call.future, reply)
            if forgotten:
                task = asyncio.create_task(self._load_and_retry(forgotten))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._schedule()

    async def _load_and_retry(self, calls: list[_Call]) -> None:
        """Redis restarted (or failed over) and forgot scripts: load them, run those calls again.

        Once: a call forgotten twice gets the NOSCRIPT error.
        """
        try:
            sources = {call.script.sha: call.script.script for call in calls if call.script}
            for source in sources.values():
                await self._redis.script_load(source)
        except (RedisError, OSError) as exc:
            error = exc if isinstance(exc, RedisError) else RedisError(f"{exc!r}")
            for call in calls:
                _settle(call.future, error)
            return
        for call in calls:
            call.fresh = False
        self._pending[:0] = calls
        self._schedule()

    async def _on_cluster(self, batch: list[_Call]) -> list[Any]:
        """A cluster batch: redis-py routes each command to its slot's node."""
        pipe = self._redis.pipeline(transaction=False)
        for call in batch:
            pipe.execute_command(*call.command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._line is not None:
            await self._line.close()
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
