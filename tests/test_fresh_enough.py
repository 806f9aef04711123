"""FreshEnough: one read at a time, only the first waited for, and a change of
this process's own never answered with what was read before it."""

from __future__ import annotations

import asyncio

import pytest

from server.tuning.fresh_enough import FreshEnough

MAX_AGE = 0.5


class Source:
    """What is read: a value that tests change, reads counted, each read held
    until the test lets it finish (``gate``)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def read(self) -> str:
        self.reads += 1
        value = self.value  # what Redis held when the read went out
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("Redis went away")
        return value


async def test_the_first_read_is_shared_and_waited_for() -> None:
    source = Source("a")
    source.gate.clear()
    fresh = FreshEnough(source.read, MAX_AGE)
    waiting = [asyncio.ensure_future(fresh.get()) for _ in range(20)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in waiting)
    assert fresh.peek() is None
    source.gate.set()
    assert await asyncio.gather(*waiting) == ["a"] * 20
    assert source.reads == 1
    assert fresh.peek() == "a"


async def test_past_half_its_age_the_value_is_served_while_one_read_runs_ahead() -> None:
    source = Source("a")
    fresh = FreshEnough(source.read, MAX_AGE)
    assert await fresh.get() == "a"
    assert await fresh.get() == "a"
    assert source.reads == 1  # young: no read
    source.value = "b"
    source.gate.clear()
    await asyncio.sleep(MAX_AGE * 0.6)
    # Past half its age: each caller is answered at once, and one read starts.
    answers = [await asyncio.wait_for(fresh.get(), 0.05) for _ in range(10)]
    assert answers == ["a"] * 10
    assert source.reads == 2
    source.gate.set()
    await asyncio.sleep(0.01)
    assert await fresh.get() == "b"
    assert source.reads == 2


async def test_a_value_past_its_age_is_never_served() -> None:
    """A quiet spell longer than max_age: the next caller waits for a new read,
    so a change made elsewhere takes hold within max_age, as promised."""
    source = Source("a")
    fresh = FreshEnough(source.read, MAX_AGE)
    assert await fresh.get() == "a"
    source.value = "b"
    await asyncio.sleep(MAX_AGE * 1.2)
    assert await fresh.get() == "b"
    assert source.reads == 2


async def test_after_forget_the_next_caller_waits_for_a_read_started_after_it() -> None:
    source = Source("a")
    fresh = FreshEnough(source.read, MAX_AGE)
    assert await fresh.get() == "a"
    await asyncio.sleep(MAX_AGE * 0.6)
    source.gate.clear()
    assert await fresh.get() == "a"  # starts a read ahead of "a", in flight
    source.value = "b"
    fresh.forget()  # this process wrote "b"
    waiting = asyncio.ensure_future(fresh.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    source.gate.set()
    assert await waiting == "b"
    # The read of "a" that was in flight did not overwrite it.
    await asyncio.sleep(0.01)
    assert fresh.peek() == "b"
    assert source.reads == 3


async def test_a_failed_read_keeps_the_value_held_and_is_tried_again() -> None:
    source = Source("a")
    fresh = FreshEnough(source.read, MAX_AGE)
    assert await fresh.get() == "a"
    source.fail = True
    await asyncio.sleep(MAX_AGE * 0.6)
    assert await fresh.get() == "a"  # its read ahead fails
    await asyncio.sleep(0.01)
    assert await fresh.get() == "a"  # and the next caller tries again
    await asyncio.sleep(0.01)
    assert source.reads == 3
    # Past its age with every read failing: the caller gets the error, not "a".
    await asyncio.sleep(MAX_AGE * 0.5)
    with pytest.raises(ConnectionError):
        await fresh.get()
    source.fail = False
    source.value = "b"
    assert await fresh.get() == "b"


async def test_a_failed_first_read_reaches_its_callers_and_the_next_reads_again() -> None:
    source = Source("a")
    source.fail = True
    fresh = FreshEnough(source.read, MAX_AGE)
    with pytest.raises(ConnectionError):
        await fresh.get()
    source.fail = False
    assert await fresh.get() == "a"
    assert source.reads == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_read() -> None:
    source = Source("a")
    source.gate.clear()
    fresh = FreshEnough(source.read, MAX_AGE)
    impatient = asyncio.ensure_future(fresh.get())
    patient = asyncio.ensure_future(fresh.get())
    await asyncio.sleep(0.01)
    impatient.cancel()
    source.gate.set()
    assert await patient == "a"
    assert source.reads == 1
