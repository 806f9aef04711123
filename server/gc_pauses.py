"""Garbage collection in a process that holds thousands of sockets.

Reference counting frees almost everything this server makes; CPython's
cyclic collector is there for the rest, and it pauses the whole process
while it walks a generation. The oldest generation holds every long-lived
object: with 10,000 viewers that is about a million (each socket's protocol,
parser, transport, task, queue, session), and one full collection took 1 to
1.5 s here (`scripts/bench`, fan-out section), a pause that no frame, ack or
gift gets through. Two changes keep full collections rare:

- ``gc.freeze()`` once the server has started: modules, settings, the
  catalogue and the app live as long as the process, and no collection
  walks them again.
- A young generation of ``YOUNG_THRESHOLD`` objects instead of 700. The
  collector counts tracked objects made minus those freed; in a storm,
  events, futures and in-flight gifts live for tens of milliseconds, and
  with a collection every 700 most of them were still alive at one. They
  were promoted, the old generation grew by a quarter every few seconds,
  and that is what starts a full collection. Collected less often, they
  are freed by reference counting first.

``GcPauses`` times every collection into ``giftstream_gc_pause_seconds``
on ``/metrics``, so that an operator sees the pauses this is about.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

YOUNG_THRESHOLD = 50_000
# The other two thresholds stay at CPython's defaults: a middle collection
# every 10 young ones, and a full one only after 10 middle ones and a
# quarter's growth of the old generation.
MIDDLE_THRESHOLD = 10
OLD_THRESHOLD = 10
PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def tune_for_many_sockets() -> None:
    """Called once the server has started (``giftstream serve``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


class GcPauses:
    """Times the collector's pauses, by generation, while registered."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._histogram = Histogram(
            "giftstream_gc_pause_seconds",
            "Time the process stood still in a garbage collection",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self._by_generation = [self._histogram.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
