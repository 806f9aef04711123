"""The run's figures: a plain dict (the JSON report) and the terminal table."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from server.loadtest.config import LoadConfig
from server.loadtest.memory import MemoryLog
from server.loadtest.stats import GIFT_COUNTERS, RoomStats, Stats

MB = 2**20


def build(config: LoadConfig, stats: Stats, memory: MemoryLog, sockets: int) -> dict[str, Any]:
    window = [s for i, s in stats.timeline.items() if 0 <= i < math.ceil(config.duration)]
    acks_in_window = sum(s.acks for s in window)
    events_in_window = sum(s.events for s in window)
    frames_in_window = sum(s.frames for s in window)
    rooms = {name: _room(room) for name, room in sorted(stats.rooms.items())}
    return {
        "target": ",".join(config.urls),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "config": _config(config),
        "sockets": {
            "planned": sockets,
            "opened": stats.connected,
            "failed": stats.connect_failed,
            "connect_seconds": round(stats.connect_seconds, 3),
        },
        "load_generator": {
            "cpu_seconds_while_sending": round(stats.cpu_seconds, 2),
            # Near 1.0: the load generator, not the server, may have set the pace.
            "busy_fraction_per_process": round(
                stats.cpu_seconds / config.duration / config.processes, 2
            ),
            # How late the generator's loops woke from 5 ms sleeps while sending.
            "loop_lag_ms": stats.loop_lag.summary(),
        },
        "gifts": {
            **{k: stats.gifts.get(k, 0) for k in GIFT_COUNTERS},
            "acked_per_second": round(acks_in_window / config.duration, 1),
        },
        "events": {
            "delivered": stats.events,
            "frames": stats.frames,
            "delivered_per_second": round(events_in_window / config.duration, 1),
            "frames_per_second": round(frames_in_window / config.duration, 1),
        },
        "latency_ms": {
            "ack": stats.ack.summary(),
            "delivery": stats.delivery.summary(),
        },
        "errors": dict(sorted(stats.errors.items())),
        "lost_events": sum(r["lost_gaps"] + r["lost_tail"] for r in rooms.values()),
        "rooms": rooms,
        "server": _server(memory, stats.connected),
        "timeline": _timeline(stats, memory),
    }


def _machine() -> dict[str, Any]:
    """This machine, and how busy it was: on a shared machine that explains the noise."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_pressure_avg60": _cpu_pressure(),
    }


def _cpu_pressure() -> float | None:
    """Percent of the last minute in which some task waited for a CPU (Linux PSI)."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(first.split()[2].removeprefix("avg60="))
    except (OSError, IndexError, ValueError):
        return None


def _config(config: LoadConfig) -> dict[str, Any]:
    return {
        "viewers": config.viewers,
        "rooms": list(config.rooms),
        "senders": config.senders,
        "rate": config.rate,
        "overlays_per_room": config.overlays,
        "duration": config.duration,
        "processes": config.processes,
        "deflate": config.deflate,
        "codec": config.codec,
        "signed_viewers": config.signed_viewers,
        "retry_fraction": config.retry_fraction,
        "big_fraction": config.big_fraction,
        "seed": config.seed,
    }


def _room(room: RoomStats) -> dict[str, Any]:
    gift_events = room.gift_events or [0]
    return {
        "sockets": room.sockets,
        "last_seq": room.max_seq,
        "events_delivered": room.events,
        "lost_gaps": room.lost_gaps,
        "lost_tail": room.lost_tail(),
        "gift_events_per_watcher": {"min": min(gift_events), "max": max(gift_events)},
    }


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / MB, 1)


def _server(memory: MemoryLog, connected: int) -> dict[str, Any]:
    per_socket = None
    if memory.before is not None and memory.connected is not None and connected:
        per_socket = round((memory.connected - memory.before) / connected / 1024, 1)
    return {
        "pid": memory.pid,
        "rss_mb_before": _mb(memory.before),
        "rss_mb_connected": _mb(memory.connected),
        "rss_mb_peak": _mb(memory.peak),
        "rss_mb_end": _mb(memory.end),
        "kb_per_socket": per_socket,
    }


def _timeline(stats: Stats, memory: MemoryLog) -> list[dict[str, Any]]:
    rows = []
    last = max((i for i in stats.timeline if i >= 0), default=-1)
    for i in range(last + 1):
        second = stats.timeline.get(i)
        if second is None:
            continue
        rows.append(
            {
                "t": i,
                "acks": second.acks,
                "events": second.events,
                "frames": second.frames,
                "errors": second.errors,
                "ack_p50_ms": second.ack.quantile_ms(0.5),
                "ack_p99_ms": second.ack.quantile_ms(0.99),
                "delivery_p50_ms": second.delivery.quantile_ms(0.5),
                "delivery_p99_ms": second.delivery.quantile_ms(0.99),
                "rss_mb": _mb(memory.by_second.get(i)),
            }
        )
    return rows


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


# ---------------------------------------------------------------- the table


def table(report: dict[str, Any]) -> str:
    c, s, g, e = report["config"], report["sockets"], report["gifts"], report["events"]
    overlays = c["overlays_per_room"] * len(c["rooms"])
    lines = [
        f"giftstream load test of {report['target']}, {report['date']}, "
        f"{c['duration']:g} s, {c['processes']} process(es)",
        f"  sockets     {c['viewers']:,} viewers ({c['senders']:,} sending) + {overlays} "
        f"overlay(s) in {len(c['rooms'])} room(s); opened {s['opened']:,}, failed {s['failed']:,}, "
        f"in {s['connect_seconds']:.1f} s",
        f"  gifts       sent {g['sent']:,}, acknowledged {g['acked']:,} "
        f"({g['acked_per_second']:,.1f}/s), refused {g['refused']:,}, "
        f"unanswered {g['unanswered']:,}",
        f"  retries     {g['retries_sent']:,} sent, {g['retries_acked_duplicate']:,} acked "
        f"duplicate, {g['retries_not_duplicate'] + g['fresh_acked_duplicate']:,} wrong",
        f"  events      delivered {e['delivered']:,} ({e['delivered_per_second']:,.0f}/s) in "
        f"{e['frames']:,} frames ({e['frames_per_second']:,.0f}/s)",
        f"  latency ms  {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'count':>9}",
        _latency_row("ack", report["latency_ms"]["ack"]),
        _latency_row("delivery", report["latency_ms"]["delivery"]),
        f"  errors      {_errors(report['errors'])}",
        f"  lost events {report['lost_events']:,}  ({_rooms(report['rooms'])})",
        f"  server      {_memory(report['server'])}",
        f"  generator   {report['load_generator']['busy_fraction_per_process']:.0%} of a core "
        f"per process while sending; machine load {report['machine']['load_average_1min']}, "
        f"CPU pressure {report['machine']['cpu_pressure_avg60']}% over the last minute",
        f"              {_own_lag(report['load_generator']['loop_lag_ms'])}",
    ]
    return "\n".join(lines)


# Past this, the generator's own delay is a visible part of what it measured.
OWN_LAG_WARNING_MS = 10.0


def _own_lag(lag: dict[str, Any]) -> str:
    p99, most = lag.get("p99"), lag.get("max")
    if p99 is None:
        return "its own loop was not timed"
    text = f"its own loop woke late by p99 {p99:.1f} ms, max {most:.1f} ms"
    if p99 > OWN_LAG_WARNING_MS:
        text += (
            ": the latencies above include the generator's own delay; "
            "give it more --processes, cores or another machine"
        )
    return text


def _latency_row(name: str, summary: dict[str, Any]) -> str:
    cells = [summary[k] for k in ("p50", "p99", "p99.9", "max")]
    text = " ".join(f"{v:8.2f}" if v is not None else f"{'-':>8}" for v in cells)
    return f"    {name:<9} {text} {summary['count']:9,}"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {n:,}" for code, n in errors.items()) if errors else "none"


def _rooms(rooms: dict[str, Any]) -> str:
    return "; ".join(
        f"{name}: last seq {r['last_seq']:,}, {r['lost_gaps']:,} in gaps, "
        f"{r['lost_tail']:,} not received by the end of the drain"
        for name, r in rooms.items()
    )


def _memory(server: dict[str, Any]) -> str:
    if server["rss_mb_before"] is None:
        return "memory unknown (not on this machine, or no --server-pid)"
    per_socket = server["kb_per_socket"]
    return (
        f"pid {server['pid']} RSS {server['rss_mb_before']:,} MB before, "
        f"{server['rss_mb_connected']:,} MB connected"
        + (f" ({per_socket:,} KB/socket)" if per_socket is not None else "")
        + f", peak {server['rss_mb_peak']:,} MB, end {server['rss_mb_end']:,} MB"
    )
