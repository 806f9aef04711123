"""Script calls made together share round trips, and each still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.tuning.pipelining import AutoPipeline, BatchedScript, pack_command

ECHO = "return {KEYS[1], ARGV[1]}"
FAIL_ON_BOOM = "if ARGV[1] == 'boom' then return redis.error_reply('boom') end return ARGV[1]"


async def test_calls_made_together_share_a_round_trip(redis: Redis, key_prefix: str) -> None:
    pipeline = AutoPipeline(redis)
    echo = BatchedScript(redis.register_script(ECHO), pipeline)
    await redis.script_load(ECHO)  # else the first batch runs again, to load it
    replies = await asyncio.gather(
        *(echo(keys=[f"{key_prefix}:{n}"], args=[n]) for n in range(200))
    )
    assert replies == [[f"{key_prefix}:{n}".encode(), str(n).encode()] for n in range(200)]
    assert pipeline.calls == 200
    assert pipeline.batches <= 4  # one turn of the loop: one batch (a few at most)
    await pipeline.close()


async def test_one_failing_call_fails_alone(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    script = BatchedScript(redis.register_script(FAIL_ON_BOOM), pipeline)
    results = await asyncio.gather(
        script(args=["a"]), script(args=["boom"]), script(args=["b"]), return_exceptions=True
    )
    assert results[0] == b"a"
    assert isinstance(results[1], ResponseError)
    assert results[2] == b"b"
    await pipeline.close()


async def test_scripts_forgotten_by_redis_are_loaded_again(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    echo = BatchedScript(redis.register_script(ECHO), pipeline)
    assert await echo(keys=["k"], args=["1"]) == [b"k", b"1"]
    await redis.script_flush()  # as after a restart or a failover
    replies = await asyncio.gather(echo(keys=["k"], args=["2"]), echo(keys=["k"], args=["3"]))
    assert list(replies) == [[b"k", b"2"], [b"k", b"3"]]
    await pipeline.close()


async def test_commands_ride_along(redis: Redis, key_prefix: str) -> None:
    pipeline = AutoPipeline(redis)
    key = f"{key_prefix}:hash"
    await redis.hset(key, mapping={"a": 1, "b": 2})
    removed = await asyncio.gather(
        pipeline.command("HDEL", key, "a"), pipeline.command("HDEL", key, "missing")
    )
    assert list(removed) == [1, 0]
    assert await redis.hkeys(key) == [b"b"]
    await pipeline.close()


async def test_a_lost_connection_fails_every_call_in_the_batch() -> None:
    # Nothing listens on port 1: every call of the batch must get the error,
    # none may wait forever.
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    pipeline = AutoPipeline(dead)
    echo = BatchedScript(dead.register_script(ECHO), pipeline)
    results = await asyncio.gather(
        *(echo(keys=["k"], args=[n]) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, Exception) for result in results), results
    await pipeline.close()
    await dead.aclose()


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    from redis.asyncio.connection import Connection

    command = ("EVALSHA", "abc123", 2, "gs:{w:ann}:wallet", b"raw", 42, "1.5", "héllo")
    expected = b"".join(Connection().pack_command(*command))
    assert pack_command(command) == expected
    assert pack_command(("SET", "k", 2.5)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n2.5\r\n"
    # A bool or None would be a bug of ours: refused, not sent as "True".
    for wrong in (True, None):
        with pytest.raises(TypeError):
            pack_command(("SET", "k", wrong))


async def test_a_deferred_call_takes_what_was_added_until_its_batch_went_out(
    redis: Redis, key_prefix: str
) -> None:
    pipeline = AutoPipeline(redis)
    echo = redis.register_script("return ARGV")
    added: list[str] = []
    reply = pipeline.defer(echo, lambda: ([], list(added)))
    added += ["a", "b"]  # after the call was made, before its batch left: included
    assert await reply == [b"a", b"b"]
    await pipeline.close()


async def test_a_deferred_call_that_cannot_be_built_fails_alone(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    echo = BatchedScript(redis.register_script(ECHO), pipeline)

    def broken() -> tuple[list[str], list[str]]:
        raise ValueError("a bug")

    bad = pipeline.defer(echo.script, broken)
    good = echo(keys=["k"], args=["1"])
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], RedisError)
    assert results[1] == [b"k", b"1"]
    await pipeline.close()


async def test_batches_in_flight_together_get_their_own_replies(
    redis: Redis, key_prefix: str
) -> None:
    # One connection carries every batch; replies are matched first in, first out.
    pipeline = AutoPipeline(redis, max_batch=3, max_in_flight=64)
    echo = BatchedScript(redis.register_script(ECHO), pipeline)
    await redis.script_load(ECHO)
    replies = await asyncio.gather(
        *(echo(keys=[f"{key_prefix}:{n}"], args=[n]) for n in range(300))
    )
    assert replies == [[f"{key_prefix}:{n}".encode(), str(n).encode()] for n in range(300)]
    assert pipeline.batches >= 100  # three calls a batch: many were out at once
    line_ids = {await pipeline.command("CLIENT", "ID") for _ in range(3)}
    assert len(line_ids) == 1
    await pipeline.close()


async def test_a_connection_killed_under_the_line_fails_its_calls_then_reopens(
    redis: Redis, key_prefix: str
) -> None:
    pipeline = AutoPipeline(redis)
    key = f"{key_prefix}:list"
    line_id = await pipeline.command("CLIENT", "ID")
    # A call parked on the line (BLPOP waits for a push) when Redis drops it.
    parked = asyncio.ensure_future(pipeline.command("BLPOP", key, 0))
    await asyncio.sleep(0.1)
    assert not parked.done()
    await redis.client_kill_filter(_id=line_id)
    with pytest.raises(RedisError, match="closed the connection"):
        await asyncio.wait_for(parked, 5)
    # The next call opens a new line and is answered on it.
    assert await pipeline.command("RPUSH", key, "x") == 1
    assert await pipeline.command("CLIENT", "ID") != line_id
    await pipeline.close()


async def test_a_reply_that_never_comes_times_out_and_the_line_reopens(
    redis: Redis, key_prefix: str
) -> None:
    pipeline = AutoPipeline(redis, reply_timeout=0.3)
    key = f"{key_prefix}:list"
    line_id = await pipeline.command("CLIENT", "ID")
    # BLPOP with no timeout: no reply ever comes on its own; the next call
    # in line waits behind it and fails with it.
    blocked = asyncio.gather(
        pipeline.command("BLPOP", key, 0), pipeline.command("PING"), return_exceptions=True
    )
    results = await asyncio.wait_for(blocked, 5)
    assert all(isinstance(result, RedisTimeoutError) for result in results), results
    assert await pipeline.command("PING") == b"PONG"
    assert await pipeline.command("CLIENT", "ID") != line_id
    # The abandoned connection was closed, not left blocking in Redis.
    clients = await redis.client_list()
    assert line_id not in {int(client["id"]) for client in clients}
    await pipeline.close()


async def test_a_closed_pipeline_leaves_no_connection_behind(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    line_id = await pipeline.command("CLIENT", "ID")
    await pipeline.close()
    await asyncio.sleep(0.05)
    clients = await redis.client_list()
    assert line_id not in {int(client["id"]) for client in clients}
