"""ReportSums.add_all sums credits alike first: what it adds, and in what order,
is what adding the credits one by one adds."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.earnings_keys import DAY_MS, HOUR_MS
from server.core.report_sums import Credit, ReportSums

START = 20_000 * DAY_MS
# A few hours over two days, and the same hour often.
PAID = [START, START + 5, START + HOUR_MS, START + DAY_MS - 1, START + DAY_MS]

credits = st.builds(
    Credit,
    sender=st.sampled_from(["ann", "bo", "cy"]),
    gift=st.sampled_from(["", "rose", "lion"]),
    count=st.integers(1, 99),
    coins=st.integers(1, 10_000),
    diamonds=st.integers(0, 5_000),
    paid_ms=st.sampled_from(PAID),
    stream=st.sampled_from(["", "s1", "s2"]),
)


def ordered(sums: ReportSums) -> Any:
    """Every figure, each dict as its items in order."""

    def items(value: Any) -> Any:
        if isinstance(value, dict):
            return [(key, items(inner)) for key, inner in value.items()]
        return value

    return items(sums.totals), items(sums.supporters), items(sums.expiry_ms), sums.credits


@settings(max_examples=300, deadline=None)
@given(st.lists(credits, max_size=40))
def test_credits_summed_by_kind_add_what_one_by_one_adds(run: list[Credit]) -> None:
    together, one_by_one = ReportSums(), ReportSums()
    together.add_all(run)
    for credit in run:
        one_by_one.add(credit)
    assert ordered(together) == ordered(one_by_one)


def test_a_storm_of_one_gift_is_summed_once() -> None:
    storm = [Credit(f"u{n % 7}", "rose", 1, 1, 0, START + n, "s1") for n in range(100)]
    sums = ReportSums()
    sums.add_all(storm)
    day = START // DAY_MS
    assert sums.credits == 100
    assert sums.totals[day]["sends"] == 100
    assert sums.totals["all"]["g:rose:coins"] == 100
    assert sums.totals["s:s1"][f"d:{day}:coins"] == 100
    assert sums.totals[day]["h:0:coins"] == 100
    assert sum(sums.supporters["all"]["coins"].values()) == 100
    assert sums.supporters["all"]["coins"]["u0"] == 15  # n = 0, 7, ..., 98


def test_the_bench_of_summing_credits_runs_and_gives_a_plausible_ratio() -> None:
    from tests.test_bench import run_script

    done = run_script("bench_report_sums.py", "--pages", "20", "--turns", "1", timeout=120)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    ratio = float(lines["ratio"])
    # A page at a time sums a storm's alike credits once a kind: never slower
    # by much, whatever the host is doing meanwhile.
    assert 0.0 < ratio < 1.5
    assert float(lines["credit by credit"].split()[0]) > 0
    # The script checks that the entries' credits sum to the same supporters
    # before it times them; a credit's reading and summing takes microseconds.
    assert 0 < float(lines["from credits entries, read and summed"].split()[0]) < 1000
