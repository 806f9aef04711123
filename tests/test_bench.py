"""scripts/bench runs end to end at tiny sizes, so that it cannot rot.

It starts its own Valkey, baseline servers, C program and giftstream
servers; this only checks that every row of the table comes out with a
positive figure (and that no event went missing), never how fast anything is.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from server.ops.embedded import EmbeddedValkey

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ROWS = {
    "money": 5,
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
