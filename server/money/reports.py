"""A creator's earnings reports, counted from their ledger off the gift's path.

Each gift's credit is in the creator's ledger: a ``credit`` entry of its
own (``settle.lua``) or a record of a ``credits`` entry holding a room
call's (``room_gifts.lua``, ``server/core/credit_entries.py``). Counting each gift into the reports
as it is credited cost some thirty commands a gift in a storm; here the
credits are counted later, a run at a time: the entries after the report
cursor are read, summed in Python (``server/core/report_sums.py``: each
field and each supporter once per run) and written by ``report.lua`` in
chunks of about a millisecond each. The run's progress, kept in Redis, says
which chunk is next; the last chunk moves the cursor. So each credit counts
exactly once, whichever process counts it and however often one dies half
way through a run, and a supporter who sent a hundred gifts in a second
costs one ``ZINCRBY`` a report, not a hundred.

Who counts what: the call that credits a creator adds them to a set of
creators with credits to count (``reports_pending_key``); every process's
worker takes creators from it every two seconds (``SREM`` says which process
took one) and counts their runs. Reading a creator's earnings counts what
is left first, so a creator never sees reports behind their wallet. A mark
lost in a crash between a settlement and its ``SADD`` delays the reports
only until that creator's next credit, or until they read their earnings:
the cursor, not the mark, says what is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.earnings_keys import EarningsKeys, reports_pending_key
from server.core.keys import WalletKeys
from server.core.report_sums import Credit, ReportSums, Scope
from server.errors import Unavailable
from server.store.calls import FailureTally, as_text, guarded
from server.store.scripts import Scripts

log = logging.getLogger(__name__)

# Ledger entries a run counts at most: a storm's second of one room's gifts,
# so that a supporter who gave in that second costs one ZINCRBY a report.
RUN_ENTRIES = 20_000
# Ledger entries read per XRANGE, and parsed between two turns of the loop,
# with a pause after each page: the process that counts also acks gifts, and
# a second of a storm's credits parsed in a burst showed in the ack p99
# (20 ms without the counting, 37 to 60 with it, in the money bench).
PAGE_ENTRIES = 100
PAGE_PAUSE_SECONDS = 0.002
# Additions per report.lua call: a run's sums are written in chunks of this
# many, each call holding Redis for about a millisecond.
CHUNK_OPS = 400
# Runs per catch-up: a longer backlog is left to the worker's next round.
MAX_RUNS = 10
WORKER_INTERVAL_SECONDS = 2.0
# KEYS of report.lua: the cursor, the run's progress, then three keys each for
# all time and each day or stream the run counts in.
_ALL_TIME, _FIRST_SCOPE = 3, 6


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A run written in part: its last entry, the chunk next, how many."""

    last_id: str
    next_chunk: int
    chunks: int

    @classmethod
    def parse(cls, text: str) -> RunProgress:
        # Two more fields (a stream state no longer kept) in a progress
        # written by an earlier version.
        last_id, next_chunk, chunks = text.split("|")[:3]
        return cls(last_id, int(next_chunk), int(chunks))


class Reports:
    def __init__(self, redis: Redis, scripts: Scripts, key_prefix: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = key_prefix
        self._pending = reports_pending_key(key_prefix)

    async def catch_up(self, creator: str) -> int:
        """Count the creator's credits not counted yet; how many this call counted."""
        keys = EarningsKeys(self._prefix, creator)
        counted = 0
        for _ in range(MAX_RUNS):
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(keys.cursor)
            pipe.get(keys.run)
            cursor_raw, progress_raw = await guarded(pipe.execute())
            cursor = as_text(cursor_raw) if cursor_raw is not None else ""
            progress = RunProgress.parse(as_text(progress_raw)) if progress_raw else None
            if progress is None:
                last_id, next_chunk, until, most = "", 0, "+", RUN_ENTRIES
            else:
                # A run left half written: the same entries make the same sums.
                last_id, next_chunk = progress.last_id, progress.next_chunk
                until, most = last_id, None
            sums = ReportSums()
            read = 0
            async for page in self._pages(creator, cursor, until, most):
                # A page at a time, the loop free between pages: a second of a
                # storm's credits, parsed at once, would hold up every ack.
                sums.add_all(
                    credit for _, fields in page for credit in Credit.all_from_entry(fields or {})
                )
                read += len(page)
                if progress is None:
                    last_id = as_text(page[-1][0])
                await asyncio.sleep(PAGE_PAUSE_SECONDS)
            if not read:
                break
            call_keys, head, chunks = report_calls(keys, cursor, last_id, sums)
            if progress is not None and progress.chunks != len(chunks):
                log.error(
                    "a half-written report run does not match its sums", extra={"creator": creator}
                )
                break
            if not await self._write(call_keys, head, chunks, next_chunk):
                continue  # another process counts this run: read on from where it is
            counted += sums.credits
            if read < RUN_ENTRIES:
                break
        return counted

    async def _pages(
        self, creator: str, cursor: str, until: str, most: int | None
    ) -> AsyncIterator[list[Any]]:
        """Ledger entries after ``cursor`` up to ``until`` (inclusive, or "+"),
        at most ``most`` of them, a page at a time."""
        ledger = WalletKeys(self._prefix, creator).ledger
        after, read = cursor, 0
        while most is None or read < most:
            count = PAGE_ENTRIES if most is None else min(PAGE_ENTRIES, most - read)
            page = await guarded(
                self._redis.xrange(ledger, f"({after}" if after else "-", until, count)
            )
            if not page:
                return
            yield page
            read += len(page)
            if len(page) < count:
                return
            after = as_text(page[-1][0])

    async def _write(
        self, keys: list[str], head: list[Any], chunks: list[list[Any]], first: int
    ) -> bool:
        """report.lua for each chunk from ``first``; False once one finds the run moved."""
        for index in range(first, len(chunks)):
            args = [head[0], head[1], index, len(chunks), *head[2:], *chunks[index]]
            if not await guarded(self._scripts.report(keys=keys, args=args)):
                return False
        return True

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


def report_calls(
    keys: EarningsKeys, cursor: str, last_id: str, sums: ReportSums
) -> tuple[list[str], list[Any], list[list[Any]]]:
    """``report.lua``'s KEYS, the ARGV every chunk of the run shares (less the
    chunk's place, ARGV[3..4]), and each chunk's additions: at least one chunk."""
    scopes = list(sums.expiry_ms)
    places: dict[Scope, int] = {"all": _ALL_TIME}
    places.update({scope: _FIRST_SCOPE + 3 * i for i, scope in enumerate(scopes)})
    head: list[Any] = [cursor, last_id, len(scopes), *(sums.expiry_ms[s] for s in scopes)]
    additions: list[list[Any]] = []
    for scope, totals in sums.totals.items():
        for name, amount in totals.items():
            additions.append(["h", places[scope], name, amount])
    for scope, ranks in sums.supporters.items():
        for offset, measure in ((1, "coins"), (2, "diamonds")):
            for user, amount in ranks[measure].items():
                additions.append(["z", places[scope] + offset, user, amount])
    chunks = [
        [value for addition in additions[start : start + CHUNK_OPS] for value in addition]
        for start in range(0, len(additions), CHUNK_OPS)
    ]
    return keys.for_report(scopes), head, chunks or [[]]
