"""A user's history: their ledger, newest first, a page at a time.

The cursor is the id of the last ledger entry a page looked at (a Redis
stream id): the next page reads the entries before it. New entries only
ever go at the ledger's end, so paging on while money moves neither skips
nor repeats a row. A ``kind`` filter skips the entries of other kinds, up
to ``SCAN_LIMIT`` of them a page: a page may then hold fewer rows than asked
for and still have a ``next_cursor``. A creator's ``credits`` entry (a room
call's credits, one row per gift) is never split across pages, so a page may
hold a few rows more than asked for.
"""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import Redis

from server.core.history import KINDS, rows_of
from server.core.keys import WalletKeys
from server.errors import BadField
from server.store.calls import as_text, guarded

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Ledger entries one page may look at when a kind filter skips most of them.
SCAN_LIMIT = 2_000
CURSOR = re.compile(r"^\d{1,20}-\d{1,20}\Z")
# A row's id: its entry's, then ``.<n>`` for a gift of a ``credits`` entry.
ROW_ID = re.compile(r"^\d{1,20}-\d{1,20}(\.\d{1,3})?\Z")


def check_query(cursor: str | None, limit: str | None, kind: str | None) -> tuple[str, int, str]:
    """The query's cursor ("" for the newest), limit and kind ("" for all), checked."""
    if cursor and not CURSOR.match(cursor):
        raise BadField("cursor must be a next_cursor this endpoint gave")
    if limit in (None, ""):
        count = DEFAULT_LIMIT
    elif limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
        count = int(limit)
    else:
        raise BadField(f"limit must be from 1 to {MAX_LIMIT}")
    if kind and kind not in KINDS:
        raise BadField(f"kind must be one of {', '.join(KINDS)}")
    return cursor or "", count, kind or ""


class History:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix

    async def page(self, user: str, cursor: str, limit: int, kind: str) -> dict[str, Any]:
        """``{"entries": rows, "next_cursor": id or None}``, newest first."""
        ledger = WalletKeys(self._prefix, user).ledger
        rows: list[dict[str, Any]] = []
        before, looked = cursor, 0
        more = True
        while len(rows) < limit and looked < SCAN_LIMIT:
            want = min(limit - len(rows) if not kind else limit * 4, SCAN_LIMIT - looked)
            newest = f"({before}" if before else "+"
            found = await guarded(self._redis.xrevrange(ledger, newest, "-", count=want))
            entries: list[Any] = list(found or [])
            for raw_id, raw in entries:
                entry_id = as_text(raw_id)
                before, looked = entry_id, looked + 1
                fields = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
                # A call's credits are one entry, never split across pages: a
                # page may end up to GIFTS_PER_CALL - 1 rows over the limit.
                rows += [r for r in rows_of(entry_id, fields) if not kind or r["kind"] == kind]
                if len(rows) >= limit:
                    break
            if len(entries) < want:
                more = False
                break
        if more and before:
            # One more entry past the last looked at? Else the history ends here.
            more = bool(await guarded(self._redis.xrevrange(ledger, f"({before}", "-", count=1)))
        return {"entries": rows, "next_cursor": before if more and before else None}
