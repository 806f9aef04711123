"""Who hears what a room says: handlers by kind, and async iterators of messages.

A handler that raises is reported through the event loop's exception
handler and the others still run: one page's bug must not stop the room.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from server.client.frames import Message

Handler = TypeVar("Handler", bound=Callable[..., object])


class Handlers(Generic[Handler]):
    """The handlers of one kind of news, called in the order they were added."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def add(self, handler: Handler) -> Callable[[], None]:
        """Adds ``handler``; returns the function that removes it."""
        self._handlers.append(handler)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.remove(handler)

        return stop

    def emit(self, *args: object) -> None:
        # A copy: a handler may remove itself, or add another, while called.
        for handler in list(self._handlers):
            try:
                handler(*args)
            except Exception as exc:
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "a giftstream room handler failed", "exception": exc}
                )


class MessageStreams:
    """Async iterators of a room's messages, each ended when the room closes."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Message | None]] = []

    def open(
        self, subscribe: Callable[[Callable[[Message], object]], Callable[[], None]], ended: bool
    ) -> AsyncIterator[Message]:
        """A stream of what ``subscribe`` hands its handler from now on.
        Subscribed at once, so that nothing between this call and the first
        read is lost; empty when the room has ``ended`` already."""
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        if ended:
            queue.put_nowait(None)
        self._queues.append(queue)
        stop = subscribe(queue.put_nowait)
        return self._drain(queue, stop)

    async def _drain(
        self, queue: asyncio.Queue[Message | None], stop: Callable[[], None]
    ) -> AsyncIterator[Message]:
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            stop()
            self._queues.remove(queue)

    def end_all(self) -> None:
        for queue in self._queues:
            queue.put_nowait(None)
