"""A viewer's own spending limits: the rules, and the wallet fields that hold them. Pure.

Three windows, in UTC: the day, the week (from Monday) and the calendar
month. Each may have a limit in coins. The gift script refuses a gift that
would take a window past its limit (``lib_budget.lua``, which reads the same
fields written here). A lower limit applies at once; a higher one, or none,
only after a cooling-off, so that a limit set in a calm moment holds in a
heated one. Asking for the limit in force cancels a change that waits.

The wallet's ``budget`` field: ``<daily>|<weekly>|<monthly>``, each window
``<limit>,<pending>,<from ms>`` (``""`` for none; a pending ``-`` removes the
limit). ``budget_spent``: ``<day>|<coins>|<week>|<coins>|<month>|<coins>``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

DAY_MS = 86_400_000
WINDOWS = ("daily", "weekly", "monthly")
REMOVE = "-"
EPOCH = dt.date(1970, 1, 1)


def window_numbers(now_ms: int) -> tuple[int, int, int]:
    """The UTC day, week (Mondays; 1970-01-01 was a Thursday) and month
    (year * 12 + month - 1) of a time: as lib_budget.lua's budget_windows."""
    day = now_ms // DAY_MS
    date = EPOCH + dt.timedelta(days=day)
    return day, (day + 3) // 7, date.year * 12 + date.month - 1


def window_ends(now_ms: int) -> tuple[int, int, int]:
    """When the current day, week and month end (ms): when their counts start again."""
    day, week, month = window_numbers(now_ms)
    year, month_index = divmod(month + 1, 12)
    next_month = (dt.date(year, month_index + 1, 1) - EPOCH).days
    return (day + 1) * DAY_MS, (week * 7 + 4) * DAY_MS, next_month * DAY_MS


@dataclass(frozen=True, slots=True)
class Window:
    limit: int | None = None
    # A raise or removal waiting for its cooling-off: the limit it brings
    # (None: no limit) and when; ``pending_at`` None when nothing waits.
    pending: int | None = None
    pending_at: int | None = None

    def in_force(self, now_ms: int) -> int | None:
        if self.pending_at is not None and now_ms >= self.pending_at:
            return self.pending
        return self.limit

    def settled(self, now_ms: int) -> Window:
        """The same window with a change that is due applied."""
        if self.pending_at is not None and now_ms >= self.pending_at:
            return Window(self.pending)
        return self

    def text(self) -> str:
        limit = "" if self.limit is None else str(self.limit)
        if self.pending_at is None:
            return f"{limit},,"
        pending = REMOVE if self.pending is None else str(self.pending)
        return f"{limit},{pending},{self.pending_at}"


def parse_budget(text: str | None) -> tuple[Window, Window, Window]:
    """The three windows a ``budget`` field holds (none when it is absent or unreadable)."""
    windows = (text or "").split("|")
    if len(windows) != 3:
        return Window(), Window(), Window()
    parsed = []
    for window in windows:
        limit, _, rest = window.partition(",")
        pending, _, at = rest.partition(",")
        parsed.append(
            Window(
                int(limit) if limit.isdigit() else None,
                int(pending) if pending.isdigit() else None,
                int(at) if at.isdigit() and pending else None,
            )
        )
    return parsed[0], parsed[1], parsed[2]


def budget_text(windows: tuple[Window, Window, Window]) -> str:
    return "|".join(window.text() for window in windows)


def changed(window: Window, wanted: int | None, now_ms: int, cooling_ms: int) -> Window:
    """The window after its owner asks for ``wanted`` (None: no limit)."""
    current = window.settled(now_ms)
    if wanted == current.limit:
        return Window(current.limit)  # a change that waited is called off
    lower = wanted is not None and (current.limit is None or wanted < current.limit)
    if lower:
        return Window(wanted)
    return Window(current.limit, wanted, now_ms + cooling_ms)


def spent_in(spent_text: str | None, now_ms: int) -> tuple[int, int, int]:
    """Coins spent in the current day, week and month, from ``budget_spent``."""
    numbers = window_numbers(now_ms)
    parts = (spent_text or "").split("|")
    if len(parts) != 6 or not all(part.isdigit() for part in parts):
        return 0, 0, 0
    spent = [int(parts[2 * i + 1]) if int(parts[2 * i]) == numbers[i] else 0 for i in range(3)]
    return spent[0], spent[1], spent[2]


def spent_text(numbers: tuple[int, int, int], spent: tuple[int, int, int]) -> str:
    return "|".join(f"{numbers[i]}|{spent[i]}" for i in range(3))


def view(
    windows: tuple[Window, Window, Window], spent: tuple[int, int, int], now_ms: int
) -> dict[str, Any]:
    """What ``GET /api/wallet/budget`` answers."""
    ends = window_ends(now_ms)
    answer: dict[str, Any] = {}
    for i, name in enumerate(WINDOWS):
        window = windows[i].settled(now_ms)
        remaining = None if window.limit is None else max(0, window.limit - spent[i])
        answer[name] = {
            "limit": window.limit,
            "spent": spent[i],
            "remaining": remaining,
            "resets_at": ends[i],
            "pending": None
            if window.pending_at is None
            else {"limit": window.pending, "from": window.pending_at},
        }
    limits = [answer[name]["remaining"] for name in WINDOWS if answer[name]["limit"] is not None]
    answer["remaining"] = min(limits) if limits else None
    return answer
