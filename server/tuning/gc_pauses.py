"""How long the cyclic garbage collector stops the process, on ``/metrics``.

CPython's cyclic collector stops the whole process while it walks a
generation; in a server holding thousands of sockets that is the pause no
frame, ack or gift gets through. ``GcPauses`` times every collection into
``giftstream_gc_pause_seconds`` by generation, so that an operator sees
them; ``gc_freezer.py`` is what keeps them short.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
