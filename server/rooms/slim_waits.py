"""A queue and a flag for one connection's tasks, smaller than asyncio's.

uvicorn gives every WebSocket connection an ``asyncio.Queue`` (the events
waiting for the app's ``receive``) and an ``asyncio.Event`` (``writable``).
Each of those builds its deques up front: about 3.8 KB of an idle
connection's memory, a sixth of all it holds (tracemalloc, 2,000 idle room
sockets). A connection has one reader of its queue and a handful of events
in it at most (reading pauses after ``READ_AHEAD``), so a list and a future
made only while someone waits do the same job in a few hundred bytes.

Only what uvicorn's protocol and ours call is here: ``put_nowait``, ``get``,
``empty`` and ``qsize``; ``set``, ``clear``, ``is_set`` and ``wait``.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class ReceiveQueue(Generic[T]):
    """First in, first out, unbounded; ``get`` waits for an item."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_a_getter()

    async def get(self) -> T:
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._getters:
                    self._getters.remove(waiter)
                elif self._items:
                    # Woken for an item, then cancelled: another getter takes it.
                    self._wake_a_getter()
                raise
        return self._items.pop(0)

    def _wake_a_getter(self) -> None:
        while self._getters:
            waiter = self._getters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Flag:
    """``asyncio.Event``'s set, clear, is_set and wait."""

    __slots__ = ("_is_set", "_waiters")

    def __init__(self) -> None:
        self._is_set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._is_set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self) -> bool:
        if self._is_set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
