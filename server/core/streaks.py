"""Combos: the same small gift sent again and again shows as one running counter.

A streak is one sender's run of one streakable gift in one room. Each send
within ``window_ms`` of the previous one continues it ("Rose x37"); after a
quiet window it ends, and the room is told its final count once. Pure: the
clock is passed in; the caller schedules the end.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(slots=True)
class Streak:
    id: str
    gift: str
    count: int
    last_ms: int
    # The stream its first gift was sent in: its end is shown in that stream.
    stream_id: str | None = None


class StreakBook:
    """The open streaks of one sender in one room, by gift."""

    __slots__ = ("_open", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._open: dict[str, Streak] = {}

    def hit(self, gift: str, count: int, now_ms: int) -> tuple[Streak, Streak | None]:
        """Count a send. Returns the streak it joined and, if one lapsed, the ended one."""
        current = self._open.get(gift)
        ended = None
        if current is not None and now_ms - current.last_ms > self.window_ms:
            ended, current = current, None
        if current is None:
            current = Streak(id=secrets.token_hex(6), gift=gift, count=0, last_ms=now_ms)
            self._open[gift] = current
        current.count += count
        current.last_ms = max(current.last_ms, now_ms)
        return current, ended

    def take_back(self, streak: Streak, count: int) -> None:
        """Undo a ``hit`` whose gift did not go through (refused, or a retry).

        A streak left with no gift in it is forgotten, as if never begun.
        """
        streak.count -= count
        if streak.count <= 0 and self._open.get(streak.gift) is streak:
            del self._open[streak.gift]

    def expire(self, now_ms: int) -> list[Streak]:
        """Close and return every streak quiet for longer than the window."""
        lapsed = [s for s in self._open.values() if now_ms - s.last_ms > self.window_ms]
        for streak in lapsed:
            del self._open[streak.gift]
        return lapsed

    def close_all(self) -> list[Streak]:
        ended = list(self._open.values())
        self._open.clear()
        return ended

    def next_deadline_ms(self) -> int | None:
        """When the next streak will lapse if nothing more is sent."""
        if not self._open:
            return None
        return min(s.last_ms for s in self._open.values()) + self.window_ms + 1
