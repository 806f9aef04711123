"""A creator's earnings reports, counted from their ledger off the gift's path.

``settle.lua`` credits a creator and writes one ``credit`` entry per gift in
their ledger; it used to count each gift into the reports too, some thirty
commands a gift in a storm. Here the credits are counted later, a run at a
time: the entries after the report cursor are read, summed in Python
(``server/core/report_sums.py``) and written by ``report.lua``, one command
per field or supporter per run, only if the cursor has not moved meanwhile.
So each credit counts exactly once, whichever process counts it and however
often one crashes, and a supporter who sent a hundred gifts in a second
costs one ``ZINCRBY`` a report, not a hundred.

Who counts what: after each settlement the settling process adds the
creator to a set of creators with credits to count
(``reports_pending_key``); every process's worker takes creators from it
once a second (``SREM`` says which process took one) and counts their runs.
Reading a creator's earnings counts what is left first, so a creator never
sees reports behind their wallet. A mark lost in a crash between the credit
and the ``SADD`` delays the reports only until that creator's next credit,
or until they read their earnings: the cursor, not the mark, says what is
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.earnings_keys import RETENTION_SECONDS, EarningsKeys, reports_pending_key
from server.core.keys import WalletKeys
from server.core.report_sums import Credit, ReportSums, Scope, StreamState, sum_credits
from server.errors import Unavailable
from server.store.calls import FailureTally, as_text, guarded
from server.store.scripts import Scripts

log = logging.getLogger(__name__)

# Ledger entries read and counted per report.lua call: a storm's second of
# one room's gifts in a few calls, each holding Redis for a millisecond or so.
RUN_ENTRIES = 1000
# Runs per catch-up: a longer backlog is left to the worker's next round.
MAX_RUNS = 20
WORKER_INTERVAL_SECONDS = 1.0
# KEYS of report.lua: the cursor, then three keys each for all time and the stream.
_ALL_TIME, _STREAM, _FIRST_DAY = 2, 5, 8


class Reports:
    def __init__(self, redis: Redis, scripts: Scripts, key_prefix: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = key_prefix
        self._pending = reports_pending_key(key_prefix)
        self.counted = 0

    async def catch_up(self, creator: str) -> int:
        """Count the creator's credits not counted yet; how many this call counted."""
        keys = EarningsKeys(self._prefix, creator)
        ledger = WalletKeys(self._prefix, creator).ledger
        counted = 0
        for _ in range(MAX_RUNS):
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(keys.cursor)
            pipe.hmget(keys.stream.totals, ["started", "last"])
            cursor_raw, (started, last) = await guarded(pipe.execute())
            cursor = as_text(cursor_raw) if cursor_raw is not None else ""
            entries = await guarded(
                self._redis.xrange(ledger, f"({cursor}" if cursor else "-", "+", RUN_ENTRIES)
            )
            if not entries:
                break
            credits = [
                credit
                for _, fields in entries
                if (credit := Credit.from_entry(_text_fields(fields or {}))) is not None
            ]
            stream = StreamState(_int_or_none(started), _int_or_none(last))
            sums = sum_credits(credits, stream)
            call_keys, args = report_call(keys, cursor, as_text(entries[-1][0]), sums)
            if not await guarded(self._scripts.report(keys=call_keys, args=args)):
                continue  # another process counted this run: read on from where it left
            counted += sums.credits
            if len(entries) < RUN_ENTRIES:
                break
        self.counted += counted
        return counted

    async def mark(self, creators: list[str]) -> None:
        """These creators have new credits to count."""
        if creators:
            await guarded(self._redis.sadd(self._pending, *creators))

    async def catch_up_marked(self) -> int:
        """Count the credits of every marked creator this process takes."""
        counted = 0
        for raw in await guarded(self._redis.smembers(self._pending)):
            creator = as_text(raw)
            # Taken before counting: a mark added meanwhile stays for the next round.
            if not await guarded(self._redis.srem(self._pending, creator)):
                continue  # another process took it
            try:
                counted += await self.catch_up(creator)
            except Exception:
                # Left marked for a later round (if Redis takes the mark back).
                with contextlib.suppress(Exception):
                    await self._redis.sadd(self._pending, creator)
                raise
        return counted

    async def run_worker(self, interval: float = WORKER_INTERVAL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.catch_up_marked()
            except (Unavailable, RedisError):
                FailureTally.count += 1
                log.warning("earnings reports could not reach Redis; will retry")
            except Exception:  # a bad entry must not stop the counting of others
                log.exception("counting earnings reports failed; will retry")


def report_call(
    keys: EarningsKeys, cursor: str, last_id: str, sums: ReportSums
) -> tuple[list[str], list[Any]]:
    """``report.lua``'s KEYS and ARGV for a run from ``cursor`` to ``last_id``."""
    days = list(sums.day_expiry_ms)
    places: dict[Scope, int] = {"all": _ALL_TIME, "stream": _STREAM}
    places.update({day: _FIRST_DAY + 3 * i for i, day in enumerate(days)})
    changed = sums.stream_changed
    args: list[Any] = [
        cursor,
        last_id,
        RETENTION_SECONDS,
        "1" if sums.stream_reset else "0",
        str(sums.stream.started) if changed else "",
        str(sums.stream.last) if changed else "",
        len(days),
        *(sums.day_expiry_ms[day] for day in days),
    ]
    for scope, totals in sums.totals.items():
        for name, amount in totals.items():
            args += ["h", places[scope], name, amount]
    for scope, ranks in sums.supporters.items():
        for offset, measure in ((1, "coins"), (2, "diamonds")):
            for user, amount in ranks[measure].items():
                args += ["z", places[scope] + offset, user, amount]
    return keys.for_report(days), args


def _text_fields(fields: dict[Any, Any]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in fields.items()}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
