"""A viewer's own spending limits: read them, and change them (budget.lua).

The gift script enforces them (``lib_budget.lua``); this module only reads
and writes the wallet's ``budget`` and ``budget_spent`` fields by the rules
of ``server/core/budget_rules.py``. A first budget also counts what the
current windows had spent before it, from the ledger, so that a limit set
at noon holds against the morning's gifts too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from redis.asyncio import Redis

from server.core import budget_rules
from server.core.budget_rules import WINDOWS
from server.core.keys import WalletKeys
from server.errors import BadField, Unavailable
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

# Ledger entries read per XREVRANGE when a first budget counts the month so far.
PAGE = 500
# A change that keeps meeting another change at the same moment gives up.
ATTEMPTS = 5


def parse_changes(body: dict[str, Any]) -> dict[str, int | None]:
    """The windows a ``PUT /api/wallet/budget`` body changes: coins, or None for no limit."""
    unknown = set(body) - set(WINDOWS)
    if unknown:
        raise BadField(f"unknown field {sorted(unknown)[0]!r}: daily, weekly or monthly")
    changes: dict[str, int | None] = {}
    for name in WINDOWS:
        if name not in body:
            continue
        value = body[name]
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**13
        ):
            raise BadField(f"{name} must be whole coins, 0 or more, or null for no limit")
        changes[name] = value
    if not changes:
        raise BadField("give at least one of daily, weekly, monthly")
    return changes


class Budgets:
    def __init__(
        self, redis: Redis, scripts: Scripts, key_prefix: str, cooling_seconds: float
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = key_prefix
        self.cooling_ms = int(cooling_seconds * 1000)

    async def get(self, user: str, now_ms: int) -> dict[str, Any]:
        wallet = WalletKeys(self._prefix, user).wallet
        budget, spent = await guarded(self._redis.hmget(wallet, ["budget", "budget_spent"]))
        windows = budget_rules.parse_budget(as_text(budget) if budget else None)
        if budget is None:
            counted = await self._spent_from_ledger(user, now_ms)
            return budget_rules.view(windows, counted[1], now_ms)
        spent_now = budget_rules.spent_in(as_text(spent) if spent else None, now_ms)
        return budget_rules.view(windows, spent_now, now_ms)

    async def set(self, user: str, changes: dict[str, int | None], now_ms: int) -> dict[str, Any]:
        keys = WalletKeys(self._prefix, user)
        for _ in range(ATTEMPTS):
            raw = await guarded(self._redis.hget(keys.wallet, "budget"))
            held = as_text(raw) if raw is not None else ""
            windows = budget_rules.parse_budget(held or None)
            new = tuple(
                budget_rules.changed(window, changes[name], now_ms, self.cooling_ms)
                if name in changes
                else window.settled(now_ms)
                for name, window in zip(WINDOWS, windows, strict=True)
            )
            assert len(new) == 3
            last_id, counted = (
                ("", (0, 0, 0)) if held else await self._spent_from_ledger(user, now_ms)
            )
            status = await guarded(
                self._scripts.budget(
                    keys=[keys.wallet, keys.ledger],
                    args=[
                        held,
                        budget_rules.budget_text((new[0], new[1], new[2])),
                        now_ms,
                        last_id,
                        budget_rules.spent_text(budget_rules.window_numbers(now_ms), counted),
                    ],
                )
            )
            if as_text(status) == "ok":
                return await self.get(user, now_ms)
        raise Unavailable("the budget kept changing under this change; try again")

    async def hold_daily_at_most(self, user: str, most: int, now_ms: int) -> None:
        """Lower the user's daily limit to ``most`` if it is higher or absent
        (a lower limit applies at once), calling off a raise that waits."""
        raw = await guarded(self._redis.hget(WalletKeys(self._prefix, user).wallet, "budget"))
        daily = budget_rules.parse_budget(as_text(raw) if raw is not None else None)[0]
        if daily.pending_at is None and daily.limit is not None and daily.limit <= most:
            return
        in_force = daily.in_force(now_ms)
        await self.set(user, {"daily": most if in_force is None else min(in_force, most)}, now_ms)

    async def _spent_from_ledger(self, user: str, now_ms: int) -> tuple[str, tuple[int, int, int]]:
        """The newest ledger entry, and the coins the user's gifts spent in the
        current day, week and month, summed from the ledger back to the
        earliest of their starts."""
        ledger = WalletKeys(self._prefix, user).ledger
        day, week, month = budget_rules.window_numbers(now_ms)
        week_start = (week * 7 - 3) * budget_rules.DAY_MS
        month_start = _month_start_ms(month)
        since = min(week_start, month_start)
        spent = [0, 0, 0]
        # The newest entry whatever its age: budget.lua adds only what comes after it.
        found = await guarded(self._redis.xrevrange(ledger, count=1))
        top: list[Any] = list(found or [])
        if not top:
            return "", (0, 0, 0)
        newest = as_text(top[0][0])
        before = newest
        while True:
            read = await guarded(self._redis.xrevrange(ledger, before, f"{since}-0", count=PAGE))
            page: list[Any] = list(read or [])
            for raw_id, raw in page:
                entry_id = as_text(raw_id)
                before = f"({entry_id}"
                fields = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
                if fields.get("kind") != "gift" or not fields.get("ts", "").isdigit():
                    continue
                numbers = budget_rules.window_numbers(int(fields["ts"]))
                cost = -int(fields.get("amount", "0"))
                for i, current in enumerate((day, week, month)):
                    if numbers[i] == current:
                        spent[i] += cost
            if len(page) < PAGE:
                break
        return newest, (spent[0], spent[1], spent[2])


def _month_start_ms(month: int) -> int:
    year, index = divmod(month, 12)
    return (dt.date(year, index + 1, 1) - budget_rules.EPOCH).days * budget_rules.DAY_MS
