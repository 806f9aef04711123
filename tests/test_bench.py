"""scripts/bench runs end to end at tiny sizes, so that it cannot rot.

It starts its own Valkey, baseline servers, C program and giftstream
servers; this checks that every row of the table comes out with a
positive figure (and that no event went missing), and that the money
section's figures are plausible, never how fast giftstream is. The
arithmetic behind the figures is checked on known inputs.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis

from server.ops.embedded import EmbeddedValkey
from server.settings import Settings

ROOM = "carol"
REPO_ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ROWS = {
    # Four rates, two latencies, and what a gift costs Valkey: three closed
    # loops, then the minimal script and giftstream at each of two rates.
    "money": 13,
    "fan-out": 11,
    "memory": 4,
}


def run_script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``scripts/<name>`` with ``args``, which must succeed."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / name), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.mark.timeout(240)
@pytest.mark.skipif(
    shutil.which("gcc") is None,
    reason="the bench's clients and its fan-out floor are C programs: needs gcc",
)
def test_quick_bench_prints_every_row_with_positive_rates(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    tiny = ["--quick", "--viewers", "60", "--seconds", "1", "--rounds", "5"]
    tiny += ["--senders", "10", "--storm-senders", "4", "--client-processes", "1"]
    done = run_script("bench_run.py", *tiny, "--json", str(out), timeout=230)
    report = json.loads(out.read_text())
    rows = report["rows"]
    by_section: dict[str, int] = {}
    for row in rows:
        by_section[row["section"]] = by_section.get(row["section"], 0) + 1
        assert row["value"] > 0, row
        if row["unit"] != "ms":  # a latency is a figure of its own
            ratio = row["ratio"] if row["ratio"] is not None else row["cpu_ratio"]
            assert ratio is not None, row
            assert ratio > 0, row
    assert by_section == EXPECTED_ROWS
    storm = next(row for row in rows if row["name"].startswith("giftstream, frames"))
    assert " 0 seq gaps" in storm["note"], storm
    quiet = next(row for row in rows if row["name"].startswith("giftstream, one event per"))
    assert quiet["note"].startswith("300 of 300 frames read, 300 events"), quiet
    busy = next(row for row in rows if row["name"].startswith("giftstream, busy room"))
    assert " 0 seq gaps" in busy["note"], busy
    # Every event of the quiet phase was a big gift, timed at every viewer.
    latency = next(row for row in rows if row["name"].startswith("giftstream, ack latency"))
    assert "server's own timer" in latency["note"], latency
    assert "the clients' own loops woke late by p99" in latency["note"], latency
    assert "CPU while paced: server " in latency["note"], latency
    assert ", Valkey " in latency["note"], latency
    assert ": scripts " in latency["note"], latency
    # How many script calls shared a pipeline to Valkey while paced.
    assert re.search(r"[0-9,]+ script pipelines, [0-9.]+ calls each", latency["note"]), latency
    # Valkey rewrites its file only between phases, when the bench asks.
    assert "Valkey started rewriting its append-only file 0 times" in latency["note"], latency
    reach = next(row for row in rows if row["name"].endswith("p99, quiet room"))
    assert "over 300 deliveries" in reach["note"], reach
    floors = [row for row in rows if row["name"].endswith("(reach floor)")]
    assert [row["name"].split(",")[0] for row in floors] == ["C", "Python"], floors
    assert all("over 300 deliveries" in row["note"] for row in floors), floors
    # Each reach row says what a delivery cost the writing process.
    assert all(" us a delivery" in row["note"] for row in [*floors, reach]), floors
    # And what it cost the kernel: at least the data segment itself.
    for row in [*floors, reach]:
        found = re.search(r", ([0-9.]+) TCP segments", row["note"])
        assert found is not None, row
        assert float(found.group(1)) >= 1.0, row
    # What each server spends on idle connections (pings) is in its memory row.
    assert all(" idle CPU " in row["note"] for row in rows if row["section"] == "memory"), rows
    floor = next(row for row in rows if row["name"].startswith("redis-py, gift script latency"))
    assert "one pipeline per 5 ms" in floor["note"], floor
    # Every latency is printed with the share of the cores the host kept.
    stolen = re.compile(r"the host kept \d+% of the cores' time \(steal\)")
    for row in [latency, floor, reach, *floors]:
        assert stolen.search(row["note"]), row
    assert 0.0 <= report["machine"]["steal"] <= 1.0
    # And with what Valkey's own latency monitor saw of its stalls meanwhile.
    for row in [latency, floor]:
        assert "Valkey stalled over 5 ms" in row["note"], row
    assert report["machine"]["cores"] >= 1
    for row in rows:
        assert row["name"] in done.stdout  # the table on the terminal has it too
    check_money_figures([row for row in rows if row["section"] == "money"])


def check_money_figures(rows: list[dict[str, Any]]) -> None:
    """The money rows of a quick bench hold plausible figures, not only positive ones."""
    by_name = {row["name"]: row for row in rows}
    minimal = by_name["minimal gift script, redis-py pipelines of 100 (baseline)"]
    assert minimal["value"] > 1_000, minimal
    assert minimal["ratio"] == 1.0, minimal
    ours = by_name["giftstream, gifts acked over WebSockets"]
    # Ratios are over the minimal baseline, which does far less a gift.
    assert 0 < ours["ratio"] < 1, ours
    assert ours["ratio"] == pytest.approx(ours["value"] / minimal["value"]), ours
    lua = by_name["gift.lua, giftstream's script, redis-py pipelines of 100"]
    assert lua["ratio"] == pytest.approx(lua["value"] / minimal["value"]), lua
    costs = [row for row in rows if row["name"].startswith("Valkey CPU per gift, ")]
    loads = [row["name"].split(": ")[0].removeprefix("Valkey CPU per gift, ") for row in costs]
    paced = [f"{rate} gifts/s offered" for rate in ("1,500", "4,000")]
    assert loads == ["closed loop"] * 3 + [paced[0]] * 2 + [paced[1]] * 2, loads
    for row in costs:
        figures = row["figures"]
        assert 0 < row["value"] < 10_000, row
        assert row["value"] == figures["valkey_us_per_gift"], row
        assert 0 < figures["script_us_per_gift"] < 10_000, row
        # Valkey rewrites its file only between phases: every figure stands.
        assert 50 < figures["aof_bytes_per_gift"] < 20_000, row
        if row["name"].endswith("minimal script (baseline)"):
            # EVALSHA, SET, GET, DECRBY, INCRBY, XADD; redis-py adds a SCRIPT
            # EXISTS to each pipeline.
            assert 5 <= figures["commands_per_gift"] <= 8, row
            assert row["ratio"] == 1.0, row
        else:
            assert 6 <= figures["commands_per_gift"] < 100, row
            assert row["ratio"] > 0, row
        if row["name"].endswith(": giftstream"):
            # Its own CPU a gift: tens to hundreds of microseconds here.
            assert 5 < figures["server_us_per_gift"] < 100_000, row
        else:
            assert "server_us_per_gift" not in figures, row
    settled = [row for row in costs if row["name"].endswith(": giftstream")]
    assert len(settled) == 3, costs
    assert all("until every gift was settled" in row["note"] for row in settled), settled


def test_a_reach_under_a_millisecond_counts_as_one_never_as_zero() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_wsclient import percentile, reach_bucket

    # A small room on loopback is reached in well under a millisecond; the
    # histogram's buckets are upper bounds, so its p99 is 1 ms, not 0.
    histogram: dict[int, int] = {}
    for elapsed in (0.0, 0.02, 0.4, 0.99, -0.3):  # -0.3: the stamp's clock ran ahead
        bucket = reach_bucket(elapsed)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert histogram == {1: 5}
    assert percentile(histogram, 0.99) == 1.0
    assert [reach_bucket(ms) for ms in (1.0, 1.01, 149.5)] == [1, 2, 150]


def test_server_settings_are_read_as_name_and_value() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import argparse

    from bench_run import server_setting

    assert server_setting("GIFT_GATHER_MS = 1.5") == ("gift_gather_ms", "1.5")
    assert server_setting("combo_window_ms=") == ("combo_window_ms", "")
    for bad in ("gift_gather_ms", "=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            server_setting(bad)


def test_the_servers_own_ack_timer_is_read_between_two_scrapes() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import ack_buckets, server_ack_summary

    def page(counts: list[int]) -> str:
        bounds = ["0.005", "0.025", "0.1", "+Inf"]
        return "\n".join(
            f'giftstream_gift_ack_seconds_bucket{{le="{le}"}} {n}.0'
            for le, n in zip(bounds, counts, strict=True)
        )

    before = ack_buckets(page([10, 10, 10, 10]))
    assert before[float("inf")] == 10
    # 100 acks between the scrapes: 60 within 25 ms, 39 more within 100 ms, 1 later.
    after = ack_buckets(page([40, 70, 109, 110]))
    summary = server_ack_summary(before, after)
    assert "60% within 25 ms" in summary, summary
    assert "p50 <= 25 ms" in summary, summary
    assert "p99 <= 100 ms" in summary, summary
    assert "no reading" in server_ack_summary(before, ack_buckets(None))


def test_script_sharing_is_calls_over_pipelines_between_two_scrapes() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import script_sharing

    def page(batches: int, calls: int) -> str:
        return (
            f"giftstream_script_batches_total {batches}.0\n"
            f"giftstream_script_calls_total {calls}.0\n"
        )

    # 40 pipelines carried 250 calls between the scrapes.
    assert script_sharing(page(10, 50), page(50, 300)) == "40 script pipelines, 6.2 calls each"
    assert script_sharing(page(10, 50), page(10, 50)) == "no script pipelines"
    assert script_sharing(None, None) == "no script pipelines"


async def test_valkey_stalls_are_read_from_its_own_latency_monitor(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import valkey_stalls, watch_valkey_stalls

    async with EmbeddedValkey(tmp_path) as valkey:
        await watch_valkey_stalls(valkey.url)
        assert await valkey_stalls(valkey.url) == "Valkey stalled over 5 ms in no second"
        redis = Redis.from_url(valkey.url)
        try:  # a script that keeps Valkey busy for well over 5 ms
            await redis.eval("local x = 0 for i = 1, 5e6 do x = x + i end return 1", 0)
        finally:
            await redis.aclose()
        stalls = await valkey_stalls(valkey.url)
    assert re.fullmatch(r"Valkey stalled over 5 ms: command in 1 s \(longest \d+ ms\)", stalls)


def test_stalls_are_listed_longest_first() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import stalls_note

    note = stalls_note({"command": [6, 7], "aof-fsync-always": [40, 9, 12], "fork": []})
    assert note == (
        "Valkey stalled over 5 ms: aof-fsync-always in 3 s (longest 40 ms), "
        "command in 2 s (longest 7 ms)"
    )


def test_steal_is_the_share_of_the_cores_time_the_host_kept_between_two_readings() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import CoreTime

    before = CoreTime(steal=100, total=1_000)
    after = CoreTime(steal=130, total=1_200)  # 30 of the 200 ticks since were stolen
    assert after.stolen_since(before) == pytest.approx(0.15)
    assert "the host kept 15% of the cores' time" in after.note_since(before)
    now = CoreTime.now()  # this machine's own counters: steal is part of the total
    assert 0 <= now.steal <= now.total
    assert CoreTime.now().stolen_since(now) <= 1.0


@pytest.mark.timeout(120)
def test_the_sweep_bench_times_one_sweep_per_key_space_size() -> None:
    done = run_script("bench_sweep.py", "--keys", "0", "3000", "--senders", "20", timeout=110)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["outboxes"] for row in rows] == [20, 20]
    # The 20 outboxes, then padded to 3,000 keys; young entries are left alone.
    assert rows[0]["keys"] == 20
    assert rows[1]["keys"] == 3000
    assert [row["settled"] for row in rows] == [0, 0]
    assert all(row["sweep_seconds"] > 0 for row in rows)


def cpu_info(user: float, sys: float) -> dict[str, Any]:
    return {"used_cpu_user": user, "used_cpu_sys": sys}


def aof_info(size: int, rewrites: int, in_progress: int = 0) -> dict[str, Any]:
    return {
        "aof_enabled": 1,
        "aof_current_size": size,
        "aof_rewrites": rewrites,
        "aof_rewrite_in_progress": in_progress,
        "aof_rewrite_scheduled": 0,
    }


def stat(calls: int, usec: int) -> dict[str, Any]:
    return {"calls": calls, "usec": usec, "usec_per_call": usec / max(calls, 1)}


BEFORE_STATS = {
    "cmdstat_evalsha": stat(100, 2_000),
    "cmdstat_set": stat(100, 300),
    "cmdstat_info": stat(5, 100),
    "cmdstat_config|set": stat(2, 10),
    "cmdstat_client|setinfo": stat(4, 4),
}
# 1,000 gifts later: an EVALSHA each, which called SET and XADD; and the
# bench's own INFO, CONFIG and connection greetings, none of them a gift's.
AFTER_STATS = {
    "cmdstat_evalsha": stat(1_100, 22_000),
    "cmdstat_set": stat(1_100, 3_300),
    "cmdstat_xadd": stat(1_000, 5_000),
    "cmdstat_info": stat(9, 180),
    "cmdstat_config|set": stat(3, 15),
    "cmdstat_client|setinfo": stat(8, 8),
    "cmdstat_hello": stat(2, 20),
}


def test_what_a_gift_costs_valkey_comes_from_two_readings_of_its_accounts() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import GiftCosts, ValkeyAccounts

    before = ValkeyAccounts.from_info(cpu_info(1.0, 0.5), BEFORE_STATS, aof_info(10_000, 1))
    after = ValkeyAccounts.from_info(cpu_info(1.03, 0.52), AFTER_STATS, aof_info(410_000, 1))
    costs = GiftCosts.between(before, after, gifts=1_000, seconds=2.0, settling=0.5)
    assert costs.valkey_us == pytest.approx(50.0)  # 0.05 s of CPU over 1,000 gifts
    assert costs.commands == pytest.approx(3.0)  # EVALSHA, SET, XADD
    assert costs.script_us == pytest.approx(20.0)
    assert costs.command_us == pytest.approx(8.0)  # SET 3 us, XADD 5 us
    assert costs.aof_bytes == pytest.approx(400.0)
    assert not costs.aof_rewritten
    assert costs.figures() == {
        "valkey_us_per_gift": costs.valkey_us,
        "commands_per_gift": costs.commands,
        "script_us_per_gift": costs.script_us,
        "aof_bytes_per_gift": costs.aof_bytes,
    }
    note = costs.note()
    assert note.startswith("a gift: 3.00 commands (scripts and what they call), 20.0 us in ")
    assert "400 B appended to the append-only file" in note, note
    assert "1,000 gifts over 2.0 s, and 0.5 s after until every gift was settled" in note, note


def test_a_rewrite_of_the_append_only_file_leaves_its_growth_unknown() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import GiftCosts, ValkeyAccounts

    before = ValkeyAccounts.from_info(cpu_info(1.0, 0.5), BEFORE_STATS, aof_info(10_000, 1))
    # The file was rewritten in between: smaller than before, for all the gifts.
    rewritten = ValkeyAccounts.from_info(cpu_info(1.03, 0.52), AFTER_STATS, aof_info(4_000, 2))
    costs = GiftCosts.between(before, rewritten, gifts=1_000, seconds=2.0)
    assert costs.aof_bytes is None
    assert costs.aof_rewritten
    assert "a rewrite of it began in the interval" in costs.note()
    assert costs.commands == pytest.approx(3.0)  # the other figures stand
    # One already under way when the interval began is flagged too, though
    # Valkey counted it before.
    under_way = ValkeyAccounts.from_info(cpu_info(1.0, 0.5), BEFORE_STATS, aof_info(10_000, 1, 1))
    grown = ValkeyAccounts.from_info(cpu_info(1.03, 0.52), AFTER_STATS, aof_info(410_000, 1))
    assert GiftCosts.between(under_way, grown, 1_000, 2.0).aof_bytes is None
    # And with no append-only file there is nothing to count.
    off = ValkeyAccounts.from_info(cpu_info(1.0, 0.5), BEFORE_STATS, {"aof_enabled": 0})
    off_after = ValkeyAccounts.from_info(cpu_info(1.03, 0.52), AFTER_STATS, {"aof_enabled": 0})
    unknown = GiftCosts.between(off, off_after, 1_000, 2.0)
    assert unknown.aof_bytes is None
    assert not unknown.aof_rewritten
    assert "no append-only file" in unknown.note()


def test_no_gift_makes_every_figure_a_gift_unknown_never_zero() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import GiftCosts, ValkeyAccounts

    before = ValkeyAccounts.from_info(cpu_info(1.0, 0.5), BEFORE_STATS, aof_info(10_000, 1))
    after = ValkeyAccounts.from_info(cpu_info(1.03, 0.52), AFTER_STATS, aof_info(410_000, 1))
    costs = GiftCosts.between(before, after, gifts=0, seconds=2.0)
    assert math.isnan(costs.valkey_us)
    assert math.isnan(costs.commands)
    assert costs.aof_bytes is not None
    assert math.isnan(costs.aof_bytes)


def costs_of(valkey_us: float, aof_bytes: float | None, gifts: int = 1_000) -> Any:
    from bench_costs import GiftCosts

    return GiftCosts(
        gifts=gifts,
        seconds=10.0,
        settling=0.0,
        valkey_us=valkey_us,
        commands=valkey_us / 10,
        script_us=valkey_us / 2,
        command_us=valkey_us / 4,
        aof_bytes=aof_bytes,
        aof_rewritten=aof_bytes is None,
    )


def test_turns_make_medians_and_ratios_are_over_the_baseline() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import Measured, medians, ratio

    turns = [
        Measured(15_000.0, costs_of(20.0, 400.0)),
        Measured(12_000.0, costs_of(30.0, None)),  # a rewrite in this turn
        Measured(16_000.0, costs_of(25.0, 380.0)),
    ]
    median = medians(turns)
    assert median.rate == 15_000.0
    assert median.costs.valkey_us == 25.0
    assert median.costs.commands == 2.5
    assert median.costs.aof_bytes == 390.0  # of the two turns with no rewrite
    assert median.costs.aof_rewritten
    assert median.costs.gifts == 3_000
    assert median.costs.turns == 3
    assert median.server_us is None  # redis-py turns: no server
    served = [Measured(1.0, costs_of(1.0, 1.0), us) for us in (150.0, None, 130.0, 170.0)]
    assert medians(served).server_us == 150.0
    assert "3,000 gifts in 3 turns over 30.0 s" in median.costs.note()
    assert "(a rewrite in some turns: not those)" in median.costs.note()
    assert ratio(4_395.0, 7_129.0) == pytest.approx(0.6165, abs=1e-4)
    assert math.isnan(ratio(4_395.0, 0.0))


def test_each_cost_row_is_held_against_the_minimal_script_at_the_same_load() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import Measured
    from bench_run import cost_rows

    minimal = Measured(15_000.0, costs_of(20.0, 400.0))
    lua = Measured(9_000.0, costs_of(50.0, 900.0))
    ours = Measured(4_000.0, costs_of(120.0, 1_500.0))
    minimal_at = {1500.0: Measured(1_500.0, costs_of(70.0, 400.0))}
    ours_at = {1500.0: Measured(1_490.0, costs_of(210.0, 1_600.0), server_us=180.4)}
    rows = cost_rows(minimal, lua, ours, minimal_at, ours_at)
    assert [(row.name, row.value, row.ratio) for row in rows] == [
        ("Valkey CPU per gift, closed loop: minimal script (baseline)", 20.0, 1.0),
        ("Valkey CPU per gift, closed loop: gift.lua, redis-py", 50.0, 2.5),
        ("Valkey CPU per gift, closed loop: giftstream", 120.0, 6.0),
        ("Valkey CPU per gift, 1,500 gifts/s offered: minimal script (baseline)", 70.0, 1.0),
        ("Valkey CPU per gift, 1,500 gifts/s offered: giftstream", 210.0, 3.0),
    ]
    assert rows[-1].note.startswith("1,490 gifts/s acked; the server 180 us a gift; a gift: 21.00")
    assert rows[-2].note.startswith("1,500 gifts/s acked; a gift:")
    assert rows[-1].figures["aof_bytes_per_gift"] == 1_600.0
    assert rows[-1].figures["server_us_per_gift"] == 180.4


def test_a_metric_is_summed_over_its_labels() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_run import metric_sum

    page = (
        "# TYPE giftstream_gifts_total counter\n"
        'giftstream_gifts_total{tier="1"} 120.0\n'
        'giftstream_gifts_total{tier="3"} 5.0\n'
        "giftstream_gifts_created 1.7e+09\n"
        "giftstream_settlement_queue 0.0\n"
    )
    assert metric_sum(page, "giftstream_gifts_total") == 125.0
    assert metric_sum(page, "giftstream_settlement_queue") == 0.0
    assert metric_sum(None, "giftstream_gifts_total") == 0.0


async def test_the_minimal_gift_script_keeps_its_contract_in_six_commands(
    tmp_path: Path,
) -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_costs import ValkeyAccounts
    from bench_money import COINS_PER_SENDER, minimal_gifts, sender_name

    async with EmbeddedValkey(tmp_path) as valkey:
        redis = Redis.from_url(valkey.url)
        try:
            gifts = await minimal_gifts(redis, "tmin", senders=2)
            before = await ValkeyAccounts.read(valkey.url)
            pipe = redis.pipeline(transaction=False)
            for n in (0, 1, 2, 2):  # the last a retry of the third
                await gifts.queue(pipe, n)
            replies = await pipe.execute()
            after = await ValkeyAccounts.read(valkey.url)
            first, second = sender_name(0), sender_name(1)
            balances = [int(await redis.get(gifts.balance(s)) or 0) for s in (first, second)]
            diamonds = int(await redis.get(f"tmin:min:diamonds:{ROOM}") or 0)
            ledger = await redis.xlen("tmin:min:ledger")
            await redis.set(gifts.balance(second), 0)
            broke = redis.pipeline(transaction=False)
            await gifts.queue(broke, 3)
            refused = await broke.execute()
        finally:
            await redis.aclose()
    price = gifts.coins
    assert replies == [
        [b"ok", COINS_PER_SENDER - price],
        [b"ok", COINS_PER_SENDER - price],
        [b"ok", COINS_PER_SENDER - 2 * price],
        [b"duplicate", -1],
    ]
    assert balances == [COINS_PER_SENDER - 2 * price, COINS_PER_SENDER - price]
    # The creator's share, rounded down as giftstream's settlement does it
    # (for a rose of one coin, nothing: INCRBY runs all the same).
    assert gifts.diamonds == price * Settings().revenue_share_percent // 100
    assert diamonds == 3 * gifts.diamonds
    assert ledger == 3
    assert refused == [[b"insufficient", 0]]
    # Three gifts of six commands; the retry stopped at its SET (two);
    # redis-py checked the script was loaded (SCRIPT EXISTS) once: it was,
    # in the set-up.
    assert after.calls - before.calls == 3 * 6 + 2 + 1


def test_the_bench_viewers_read_a_compressed_room_frame_as_the_server_makes_it() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_wsclient import Shared

    from server.rooms.ws_protocol import deflated_frame_bytes

    events = [{"type": "gift", "seq": seq, "tier": "small", "ts": 0} for seq in range(5, 205)]
    events[50]["tier"], events[50]["ts"] = "fullscreen", 1234
    payload = msgpack.packb({"type": "events", "events": events})
    frame = deflated_frame_bytes(payload, 15)
    assert frame[0] & 0x40  # compressed: RSV1
    compressed = frame[4:]  # two bytes of header, then a 16-bit length
    assert len(compressed) == int.from_bytes(frame[2:4], "big")
    assert Shared().room_frame(compressed, compressed=True) == (200, 5, 204, (1234,))
    assert Shared().room_frame(payload) == (200, 5, 204, (1234,))
