"""Gifts sent and not answered yet, and what each answer does to them.

A send stays here, by request id, until an ``ack`` or a final ``error``
answers it. A ``temporary`` refusal sends it again later, with the same id;
after a drop the room writes every send still here once the next welcome
comes. The server answers a repeat with the first outcome, so however many
times a send goes out it is paid for at most once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from server.client.backoff import jitter
from server.client.errors import GiftstreamError
from server.client.frames import Message

# A send refused as `temporary` (rate_limited, unavailable, internal) goes
# again with the same id this many times, about 0.25, 0.5, 1 and 2 s apart.
TEMPORARY_RETRIES = 4
TEMPORARY_RETRY_SECONDS = 0.25


@dataclass
class PendingGift:
    request_id: str
    frame: Message
    answer: asyncio.Future[Message]
    # It went out at least once: it may have been paid for.
    written: bool = False
    # Answers of `temporary` errors so far.
    retries: int = 0
    retry_timer: asyncio.TimerHandle | None = None

    def stop_retry_timer(self) -> None:
        if self.retry_timer is not None:
            self.retry_timer.cancel()
            self.retry_timer = None


class PendingSends:
    """The sends of one room client that wait for their answer."""

    __slots__ = ("_pending", "_resend", "sent_ids")

    def __init__(self, resend: Callable[[PendingGift], None]) -> None:
        # Called, later, for a send to write again after a temporary refusal.
        self._resend = resend
        self._pending: dict[str, PendingGift] = {}
        # Every request id this client has sent, to recognise its own gifts.
        self.sent_ids: set[str] = set()

    def get(self, request_id: str) -> PendingGift | None:
        return self._pending.get(request_id)

    def add(self, request_id: str, frame: Message) -> PendingGift:
        pending = PendingGift(request_id, frame, asyncio.get_running_loop().create_future())
        self._pending[request_id] = pending
        self.sent_ids.add(request_id)
        return pending

    def waiting(self) -> list[PendingGift]:
        """Every unanswered send, oldest first (a copy: answers may come meanwhile)."""
        return list(self._pending.values())

    def fail(self, pending: PendingGift, error: GiftstreamError) -> None:
        self._forget(pending)
        if not pending.answer.done():
            pending.answer.set_exception(error)
            # Read here, so that a send nobody awaits any more is not reported
            # as an exception never retrieved.
            pending.answer.exception()

    def on_ack(self, ack: Message) -> None:
        pending = self._pending.get(str(ack.get("id")))
        if pending is None:
            return
        self._forget(pending)
        if not pending.answer.done():
            pending.answer.set_result(ack)

    def on_error(self, error: GiftstreamError) -> bool:
        """Whether ``error`` answered one of these sends (else it is the room's)."""
        pending = self._pending.get(error.request_id) if error.request_id else None
        if pending is None:
            return False
        if error.temporary and pending.retries < TEMPORARY_RETRIES:
            delay = jitter(TEMPORARY_RETRY_SECONDS * 2**pending.retries)
            pending.retries += 1
            loop = asyncio.get_running_loop()
            pending.retry_timer = loop.call_later(delay, self._resend, pending)
        else:
            self.fail(pending, error)
        return True

    def _forget(self, pending: PendingGift) -> None:
        pending.stop_retry_timer()
        self._pending.pop(pending.request_id, None)
