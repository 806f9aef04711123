"""What summing a page of credits for the earnings reports costs, credit by credit
against a page at a time (``ReportSums.add`` against ``add_all``), in one run.

    .venv/bin/python scripts/bench_report_sums.py [--pages 200] [--senders 500] [--turns 5]

The report worker runs in the process that acks gifts, a page of 100 credit
entries at a time; in a storm the credits of a page are mostly one gift in
one stream in one hour, from many senders. Prints µs a credit for each way
and their ratio (medians of ``--turns``). Parsing the entries is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.core.earnings_keys import DAY_MS
from server.core.report_sums import Credit, ReportSums

PAGE_ENTRIES = 100
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


def us_a_credit(
    way: Callable[[list[list[Credit]]], ReportSums], pages: list[list[Credit]]
) -> float:
    started = time.perf_counter()
    way(pages)
    return (time.perf_counter() - started) * 1e6 / (len(pages) * PAGE_ENTRIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    pages = storm_pages(args.pages, args.senders)
    assert one_by_one(pages).totals == page_at_a_time(pages).totals
    singly, paged = [], []
    for _ in range(args.turns):  # in turn, so that the host's noise falls on both
        singly.append(us_a_credit(one_by_one, pages))
        paged.append(us_a_credit(page_at_a_time, pages))
    single, page = statistics.median(singly), statistics.median(paged)
    print(f"credit by credit: {single:.2f} µs a credit")
    print(f"a page at a time: {page:.2f} µs a credit")
    print(f"ratio: {page / single:.2f}")


if __name__ == "__main__":
    main()
