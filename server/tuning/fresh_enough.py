"""A value read from Redis at most once every ``max_age`` seconds, for every gift.

The gift path checks a few things that change rarely (who is suspended,
what the operator said of users' ages, a room's creator's profile): each
process keeps its last read for ``max_age`` seconds, so that a change made
elsewhere takes hold within that (and the read's round trip).

The read is made ahead of time: the first caller to find the value past
half its age starts one read, and it and every caller until the read
returns are answered with the value held, which is still young enough. In
a storm the gifts never wait for a read: each waiting, in a shielded
future, for the read's round trip was a twelfth of the gift path's time in
a profile of a storm, and a step in its ack latency every second. Only a
caller who finds no value young enough (the first, or the first after a
quiet spell) waits, with every other such caller, for one read.

A change this process makes itself calls ``forget()``: the next caller
waits for a read that starts after the change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class FreshEnough(Generic[Value]):
    __slots__ = (
        "_fresh_until",
        "_generation",
        "_held",
        "_loading",
        "_max_age",
        "_read",
        "_read_ahead_at",
    )

    def __init__(self, read: Callable[[], Awaitable[Value]], max_age: float) -> None:
        self._read = read
        self._max_age = max_age
        # (value,) once a read succeeded: a value may itself be None.
        self._held: tuple[Value] | None = None
        self._fresh_until = 0.0
        self._read_ahead_at = 0.0
        self._loading: asyncio.Future[Value] | None = None
        # Bumped by forget(): a read started before it must not be kept.
        self._generation = 0

    async def get(self) -> Value:
        held = self._held
        if held is not None:
            now = time.monotonic()
            if now < self._fresh_until:
                if now >= self._read_ahead_at and self._loading is None:
                    self._start_read()
                return held[0]
        loading = self._loading or self._start_read()
        # Shielded: one caller giving up must not cancel the read the others wait for.
        return await asyncio.shield(loading)

    def peek(self) -> Value | None:
        """The value held, however old; None before the first read or after ``forget``."""
        return self._held[0] if self._held is not None else None

    def forget(self) -> None:
        """This process changed what is read: the next caller waits for a new read."""
        self._generation += 1
        self._held = None
        self._loading = None

    def _start_read(self) -> asyncio.Future[Value]:
        loading = asyncio.ensure_future(self._read())
        generation = self._generation
        self._loading = loading
        loading.add_done_callback(lambda done: self._read_done(done, generation))
        return loading

    def _read_done(self, done: asyncio.Future[Value], generation: int) -> None:
        if generation != self._generation:
            return  # forgotten meanwhile: its callers have it, nobody else may
        self._loading = None
        if done.cancelled():
            return
        if done.exception() is not None:
            # Its awaiters got the error; a read ahead's is not lost either:
            # the value held stays while young enough, and the next caller
            # reads again.
            return
        now = time.monotonic()
        self._held = (done.result(),)
        self._fresh_until = now + self._max_age
        self._read_ahead_at = now + self._max_age / 2
