"""The load generator, run for a few seconds against a real demo server.

Its figures are checked against what the server and an independent watcher
saw: every paid gift acknowledged once and shown once to every watcher, no
seq gaps, retries answered ``duplicate: true``, and the files it writes.
No timing is asserted beyond "it finished".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

import httpx

from server.client.frames import encode
from server.loadtest.clients import Context, RoomSocket
from server.loadtest.config import LoadConfig, new_user_prefix
from server.loadtest.patterns import GiftMix, Retry, Send, SenderPattern
from server.loadtest.population import SocketSpec
from server.loadtest.report import OWN_LAG_WARNING_MS, _own_lag
from server.loadtest.runner import run
from server.loadtest.stats import Histogram, Stats
from server.loadtest.wire import RoomFrame, room_frame
from tests.client import RoomClient
from tests.conftest import REPO_ROOT, ServerProcess, StartServer

CATALOG = json.loads((REPO_ROOT / "server" / "core" / "data" / "catalog.json").read_text())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def gifts_paid(server: ServerProcess) -> int:
    """giftstream_gifts_total summed over tiers, from the server's own /metrics."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("giftstream_gifts_total{")
    )


def check_consistent(report: dict[str, Any]) -> None:
    gifts, rooms = report["gifts"], report["rooms"]
    assert gifts["acked"] > 0
    assert gifts["sent"] == gifts["acked"]
    assert gifts["refused"] == gifts["unanswered"] == gifts["own_events_missing"] == 0
    assert gifts["retries_sent"] > 0
    assert gifts["retries_acked_duplicate"] == gifts["retries_sent"]
    assert gifts["retries_not_duplicate"] == gifts["fresh_acked_duplicate"] == 0
    assert report["errors"] == {}
    assert report["lost_events"] == 0
    assert report["events"]["delivered"] == sum(r["events_delivered"] for r in rooms.values())
    # Each paid gift is shown once to every socket that watched to the end.
    assert rooms["carol"]["gift_events_per_watcher"] == {
        "min": gifts["acked"],
        "max": gifts["acked"],
    }
    ack, delivery = report["latency_ms"]["ack"], report["latency_ms"]["delivery"]
    assert ack["count"] == gifts["acked"] + gifts["retries_acked_duplicate"]
    assert delivery["count"] == gifts["acked"]
    for summary in (ack, delivery):
        assert 0 <= summary["p50"] <= summary["p99"] <= summary["p99.9"] <= summary["max"]
    assert sum(row["acks"] for row in report["timeline"]) == gifts["acked"]


async def test_a_short_run_adds_up(server: ServerProcess) -> None:
    watcher = await RoomClient.open(server.ws, "carol")
    welcome = await watcher.of_type("welcome")
    config = LoadConfig(
        base_url=server.http,
        viewers=16,
        senders=4,
        rate=40,
        duration=4,
        retry_fraction=0.15,
        big_fraction=0.05,
        seed=7,
        user_prefix=new_user_prefix(),
    )
    lines: list[str] = []
    report = await asyncio.wait_for(run(config, lines.append), 60)

    check_consistent(report)
    assert report["gifts"]["acked"] == await gifts_paid(server)
    seen = [m for m in await watcher.drain(quiet=1.0) if m["type"] in ("gift", "combo_end")]
    await watcher.close()
    # An independent watcher saw the same room: every seq once (after carol's
    # stream_started, from before it joined), as many gifts as acked.
    first = welcome["last_seq"] + 1
    assert [m["seq"] for m in seen] == list(range(first, report["rooms"]["carol"]["last_seq"] + 1))
    assert sum(m["type"] == "gift" for m in seen) == report["gifts"]["acked"]
    # 16 viewers and the overlay, each to the end; senders are among the viewers.
    assert report["sockets"] == {
        "planned": 17,
        "opened": 17,
        "failed": 0,
        "connect_seconds": report["sockets"]["connect_seconds"],
    }
    assert report["server"]["pid"] == server.process.pid
    assert report["server"]["rss_mb_before"] > 0
    assert sum("acks/s" in line for line in lines) >= 3


async def test_the_command_with_two_processes_writes_json_and_png(
    server: ServerProcess, tmp_path: Path
) -> None:
    json_path, png_path = tmp_path / "report.json", tmp_path / "report.png"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "loadtest", server.http,
        "--viewers", "12", "--senders", "3", "--rate", "30", "--duration", "3",
        "--retries", "0.15", "--processes", "2", "--seed", "3",
        "--json", str(json_path), "--plot", str(png_path),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 90)
    text = output.decode()
    assert process.returncode == 0, text
    assert "latency ms" in text
    assert "acks/s" in text

    report = json.loads(json_path.read_text())
    check_consistent(report)
    assert report["config"]["processes"] == 2
    assert report["sockets"]["opened"] == 13
    # Both processes timed their own loops through the 3 s of sending (5 ms
    # sleeps: 1,200 at most; a loaded machine gets fewer).
    lag = report["load_generator"]["loop_lag_ms"]
    assert 100 < lag["count"] <= 2 * 3 / 0.005 + 2, lag
    assert lag["p50"] is not None
    assert lag["max"] >= lag["p50"] >= 0
    assert "its own loop woke late by p99" in text
    assert png_path.read_bytes().startswith(PNG_MAGIC)


async def test_a_server_without_demo_endpoints_is_refused_clearly(
    start_server: StartServer,
) -> None:
    production = await start_server(demo=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "loadtest", production.http, "--duration", "1",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, error = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "demo mode" in error.decode()


# ---------------------------------------------------------------- the pure parts


def test_a_late_generator_says_so() -> None:
    prompt = _own_lag({"p99": 1.2, "max": 3.0, "count": 500})
    assert prompt.startswith("its own loop woke late by p99 1.2 ms, max 3.0 ms")
    assert "include the generator's own delay" not in prompt
    late = _own_lag({"p99": OWN_LAG_WARNING_MS + 1, "max": 40.0, "count": 500})
    assert "the latencies above include the generator's own delay" in late
    assert "not timed" in _own_lag({"p99": None, "max": None, "count": 0})


def test_histogram_quantiles_and_merge() -> None:
    low, high = Histogram(), Histogram()
    for ms in range(1, 501):
        low.add(ms / 1000)
    for ms in range(501, 1001):
        high.add(ms / 1000)
    low.merge(Histogram.from_dict(json.loads(json.dumps(high.to_dict()))))
    assert low.count == 1000
    assert low.quantile_ms(0.5) == 500
    assert low.quantile_ms(0.99) == 990
    assert low.quantile_ms(0.999) == 999
    assert low.summary()["max"] == 1000
    assert Histogram().quantile_ms(0.5) is None


def test_a_watcher_counts_events_and_gaps() -> None:
    config = LoadConfig(base_url="http://127.0.0.1:1")
    ctx = Context(config=config, mix=GiftMix.from_catalog(CATALOG), stats=Stats())
    socket = RoomSocket(SocketSpec("viewer", "carol", (), None, 0), ctx)
    socket.baseline = socket.last_seq = 2
    frames = [
        [{"type": "gift", "seq": 2, "sender": "a"}],  # from before the welcome: not new
        [{"type": "gift", "seq": 3, "sender": "a"}, {"type": "combo_end", "seq": 4}],
        [{"type": "gift", "seq": 7, "sender": "b"}],  # 5 and 6 never came
    ]
    for events in frames:
        digest = room_frame({"type": "events", "events": events})
        assert isinstance(digest, RoomFrame)
        socket.on_room_frame(digest, 0.0)
    assert (socket.events, socket.lost, socket.last_seq, socket.gift_events) == (4, 2, 7, 2)
    assert ctx.stats.events == 4
    assert ctx.stats.frames == 3
    assert room_frame({"type": "ack", "id": "x"}) is None
    assert isinstance(encode({"type": "ping", "id": "p"}, "msgpack"), bytes)


def test_a_sender_pattern_streaks_spends_within_its_coins_and_retries() -> None:
    mix = GiftMix.from_catalog(CATALOG)
    pattern = SenderPattern(random.Random(1), mix, big_fraction=0.1, retry_fraction=0.2)
    actions = [pattern.next(spendable=10_000, can_retry=True) for _ in range(2000)]
    sends = [a for a in actions if isinstance(a, Send)]
    retries = [a for a in actions if isinstance(a, Retry)]
    assert 300 < len(retries) < 500
    big = {g.id for g in mix.big}
    assert {s.gift for s in sends} & big
    assert all(s.coins <= 10_000 for s in sends)
    # Streaks: the same small gift many times in a row.
    runs = sum(1 for a, b in itertools.pairwise(sends) if a.gift == b.gift)
    assert runs > len(sends) / 2
    assert pattern.next(spendable=0, can_retry=False) is None
    assert all(
        isinstance(a, Send) and a.coins <= 3 for a in (pattern.next(3, False) for _ in range(50))
    )
