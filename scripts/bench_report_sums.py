"""What summing a page of credits for the earnings reports costs, credit by credit
against a page at a time (``ReportSums.add`` against ``add_all``), in one run.

    .venv/bin/python scripts/bench_report_sums.py [--pages 200] [--senders 500] [--turns 5]

The report worker runs in the process that acks gifts, a page of 100 credit
entries at a time; in a storm the credits of a page are mostly one gift in
one stream in one hour, from many senders. Prints µs a credit for each way
and their ratio (medians of ``--turns``), then the report worker's whole
work on a page it read: the same credits as ``credits`` entries of eight
records (``room_gifts.lua``'s), parsed (``Credit.all_from_entry``) and
summed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.core.earnings_keys import DAY_MS
from server.core.report_sums import Credit, ReportSums

PAGE_ENTRIES = 100
# Gifts a room_gifts.lua call credits in one entry, at most.
CALL_GIFTS = 8
START = 20_000 * DAY_MS


def storm_pages(pages: int, senders: int) -> list[list[Credit]]:
    """Roses in one stream, a millisecond apart, from ``senders`` in turn."""
    return [
        [
            Credit(f"u{(p * PAGE_ENTRIES + n) % senders}", "rose", 1, 1, 0, START + n, "s1")
            for n in range(PAGE_ENTRIES)
        ]
        for p in range(pages)
    ]


def ledger_pages(pages: list[list[Credit]]) -> list[list[dict[bytes, bytes]]]:
    """The same credits as ``credits`` entries of eight records (as
    ``room_gifts.lua`` writes a call's), as XRANGE returns their fields, in
    pages of ``PAGE_ENTRIES`` entries as the worker reads them."""
    credits = [credit for page in pages for credit in page]
    entries = [
        credits_entry(credits[i : i + CALL_GIFTS]) for i in range(0, len(credits), CALL_GIFTS)
    ]
    return [entries[i : i + PAGE_ENTRIES] for i in range(0, len(entries), PAGE_ENTRIES)]


def credits_entry(call: list[Credit]) -> dict[bytes, bytes]:
    records = [
        f"{c.sender}:r{c.paid_ms}|{c.coins}|50|{c.diamonds}|0|{c.coins * 50}|{c.paid_ms}"
        f"|{c.gift}|{c.count}|{c.stream}"
        for c in call
    ]
    return {
        b"kind": b"credits",
        b"n": str(len(records)).encode(),
        b"ts": str(call[-1].paid_ms).encode(),
        b"d": ";".join(records).encode(),
        b"prev": b"0" * 40,
    }


def from_the_ledger(entries: list[list[dict[bytes, bytes]]]) -> ReportSums:
    """What the report worker does with a page it read: each entry's credits, summed."""
    sums = ReportSums()
    for page in entries:
        sums.add_all(credit for fields in page for credit in Credit.all_from_entry(fields))
    return sums


def one_by_one(pages: list[list[Credit]]) -> ReportSums:
    sums = ReportSums()
    for page in pages:
        for credit in page:
            sums.add(credit)
    return sums


def page_at_a_time(pages: list[list[Credit]]) -> ReportSums:
    sums = ReportSums()
    for page in pages:
        sums.add_all(page)
    return sums


def us_a_credit(way: Callable[[Any], ReportSums], pages: Any, credits: int) -> float:
    started = time.perf_counter()
    way(pages)
    return (time.perf_counter() - started) * 1e6 / credits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    pages = storm_pages(args.pages, args.senders)
    entries = ledger_pages(pages)
    credits = len(pages) * PAGE_ENTRIES
    assert one_by_one(pages).totals == page_at_a_time(pages).totals
    assert from_the_ledger(entries).supporters == page_at_a_time(pages).supporters
    singly, paged, read = [], [], []
    for _ in range(args.turns):  # in turn, so that the host's noise falls on both
        singly.append(us_a_credit(one_by_one, pages, credits))
        paged.append(us_a_credit(page_at_a_time, pages, credits))
        read.append(us_a_credit(from_the_ledger, entries, credits))
    single, page = statistics.median(singly), statistics.median(paged)
    print(f"credit by credit: {single:.2f} µs a credit")
    print(f"a page at a time: {page:.2f} µs a credit")
    print(f"ratio: {page / single:.2f}")
    print(f"from credits entries, read and summed: {statistics.median(read):.2f} µs a credit")


if __name__ == "__main__":
    main()
