"""The PNG: throughput and latency over the run, and the server's memory.

matplotlib is an optional dependency (the ``loadtest`` extra): the load
test runs without it, and only ``--plot`` asks for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlotError(Exception):
    """--plot was asked for, and matplotlib is missing."""


def write_plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError("--plot needs matplotlib: pip install 'giftstream[loadtest]'") from exc
    # No display: render to a file, whatever the environment says.
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = report["timeline"]
    t = [row["t"] for row in rows]
    has_memory = any(row["rss_mb"] is not None for row in rows)
    panels = 3 if has_memory else 2
    figure, axes = pyplot.subplots(panels, 1, figsize=(10, 3 * panels), sharex=True)
    config = report["config"]
    figure.suptitle(
        f"giftstream load test: {config['viewers']:,} viewers, {config['senders']:,} senders, "
        f"{config['rate']:g} gifts/s, {report['date']}"
    )

    throughput = axes[0]
    throughput.plot(t, [row["acks"] for row in rows], label="gifts acked/s", color="tab:blue")
    throughput.set_ylabel("gifts acked/s")
    events = throughput.twinx()
    events.plot(t, [row["events"] for row in rows], label="events delivered/s", color="tab:orange")
    events.set_ylabel("events delivered/s")
    throughput.legend(loc="upper left")
    events.legend(loc="upper right")

    latency = axes[1]
    for key, label in (
        ("ack_p50_ms", "ack p50"),
        ("ack_p99_ms", "ack p99"),
        ("delivery_p50_ms", "delivery p50"),
        ("delivery_p99_ms", "delivery p99"),
    ):
        points = [(row["t"], row[key]) for row in rows if row[key] is not None]
        if points:
            latency.plot([p[0] for p in points], [p[1] for p in points], label=label)
    latency.set_ylabel("latency, ms")
    latency.set_yscale("log")
    latency.legend(loc="upper left")

    if has_memory:
        points = [(row["t"], row["rss_mb"]) for row in rows if row["rss_mb"] is not None]
        axes[2].plot([p[0] for p in points], [p[1] for p in points], color="tab:green")
        axes[2].set_ylabel("server RSS, MB")
    axes[-1].set_xlabel("seconds since sending started")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
