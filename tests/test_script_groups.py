"""ScriptGroups: a group's entries share a script call, and with a gathering
wait, entries that come a little apart share it too."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from server.tuning.pipelining import AutoPipeline
from server.tuning.script_groups import ScriptGroups

# Head: the group's name; then one argument per entry. Each entry is answered
# with how many entries its call held.
COUNTING = """
local entries = #ARGV - 1
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = entries
end
return out
"""


def head(group: str) -> tuple[list[Any], list[Any]]:
    return [], [group]


async def entries_apart(groups: ScriptGroups, count: int, apart: float) -> list[int]:
    """``count`` entries of one group, ``apart`` seconds apart; how many each call held."""
    answers = []
    for n in range(count):
        answers.append(groups.add("room", [], [n]))
        await asyncio.sleep(apart)
    return [int(reply[0]) for reply in await asyncio.gather(*answers)]


async def counting(redis: Redis) -> Any:
    # Loaded already, so that no call is counted twice for a NOSCRIPT retry.
    await redis.script_load(COUNTING)
    return redis.register_script(COUNTING)


async def test_without_a_wait_entries_a_little_apart_go_alone(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    groups = ScriptGroups(pipeline, await counting(redis), head, reply_width=1)
    assert await entries_apart(groups, 3, 0.01) == [1, 1, 1]
    assert pipeline.calls == 3
    await pipeline.close()


async def test_with_a_wait_they_share_one_call(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    script = await counting(redis)
    groups = ScriptGroups(pipeline, script, head, reply_width=1, gather_seconds=0.2)
    assert await entries_apart(groups, 3, 0.01) == [3, 3, 3]
    assert pipeline.calls == 1
    # Another group waits for its own call.
    other = groups.add("other", [], ["x"])
    assert await other == [1]
    assert pipeline.calls == 2
    await pipeline.close()


async def test_a_full_call_goes_without_waiting(redis: Redis) -> None:
    pipeline = AutoPipeline(redis)
    script = await counting(redis)
    groups = ScriptGroups(pipeline, script, head, reply_width=1, max_entries=2, gather_seconds=30.0)
    started = time.monotonic()
    full = [groups.add("room", [], [n]) for n in range(2)]
    assert [int(r[0]) for r in await asyncio.wait_for(asyncio.gather(*full), 5.0)] == [2, 2]
    assert time.monotonic() - started < 5.0
    await pipeline.close()
