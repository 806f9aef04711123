"""Keeps the cyclic collector's walks off the objects that open sockets hold.

Reference counting frees almost everything this server makes; CPython's
cyclic collector is there for the rest, and it stops the whole process while
it walks a generation. Whatever outlives two young collections lands in the
oldest generation, and a full collection walks all of it: with 10,000
viewers that is about 500,000 objects (each socket's protocol, parser,
transport, task and session), and one such walk stopped the server for 470
to 660 ms (docs/benchmarks.md, "The first round's stall was a full
collection"). No frame, ack or gift gets through meanwhile, and it came with
the first big gift after a crowd had joined.

So whatever survives a collection is frozen (``gc.freeze()``, which moves
every tracked object to a generation that collections skip, in constant
time). Collections then only ever walk objects made since the last one:
short-lived cycles still die young, and a socket's objects, once frozen,
are freed by reference counting when it closes, as before.

What freezing gives up: a cycle among frozen objects that becomes garbage
is not reclaimed. The server makes few (full collections over whole bench
runs found 10 to 252 such objects), but to keep that bounded, once the
frozen objects are ``GROWTH_BEFORE_FULL`` times as many as after the last
full collection, everything is unfrozen and collected once, at the next
check. Sockets opened since then are allowed for first
(``OBJECTS_PER_SOCKET`` each, at the most seen open at a check): a crowd
joining is not garbage piling up, and a crowd leaving frees its objects by
reference counting, not all in the instant it leaves its rooms.
Without that allowance, a crowd joining a process that had just started
cost it three full collections while the sockets opened, 100, 260-300 and
530-700 ms long at 10,000 viewers, as the count doubled from about 50,000
objects. ``/metrics`` shows the frozen objects and those full
collections; ``gc_pauses.py`` times every pause.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

# A young collection every 50,000 net new tracked objects, instead of
# CPython's 700: in a storm, events, futures and in-flight gifts live for
# tens of milliseconds, and with a collection every 700 most of them were
# still alive at one; here they are freed by reference counting first, and
# fewer of them are frozen. The other two thresholds are CPython's.
YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 10
OLD_THRESHOLD = 10
# A full collection over everything once the frozen objects have doubled...
GROWTH_BEFORE_FULL = 2.0
# ...beyond what the sockets opened since the last one account for. A
# viewer's socket keeps about 50 objects frozen here (its protocol, parser,
# transport, task and session: about 500,000 for 10,000 viewers); this
# allows for twice that. So the garbage that may pile up frozen is bounded
# by about what the process holds for its sockets.
OBJECTS_PER_SOCKET = 100
# How often the need for one is checked, from the event loop: not from the
# collector's callback, where a collection cannot start.
CHECK_SECONDS = 1.0


class GcFreezer:
    """Freezes what survives each collection; collects everything when that
    doubles, new sockets aside.

    Counting the frozen objects (``gc.get_freeze_count()``) walks all of
    them: 16 ms for 1.2 million here, too long to do at every collection.
    So each collection adds to an estimate of how many more there are, which
    errs high, and they are counted only when the estimate says they may
    be past their allowance.
    """

    def __init__(
        self, registry: CollectorRegistry, open_sockets: Callable[[], int] = lambda: 0
    ) -> None:
        self._open_sockets = open_sockets
        self._baseline = 0  # frozen objects after the last full collection
        self._baseline_sockets = 0  # and open sockets then
        self._peak_sockets = 0  # the most open at a check since
        self._counted = 0  # frozen objects when last counted
        self._since = 0  # an estimate, erring high, of how many more since then
        self._young = 0
        self._full_collections = Counter(
            "giftstream_gc_full_collections",
            "Collections over every object, the frozen ones included (at start, then on doubling)",
            registry=registry,
        )
        frozen = Gauge(
            "giftstream_gc_frozen_objects",
            "Objects that survived a collection and that collections no longer walk "
            "(counted now and then, estimated in between, erring high)",
            registry=registry,
        )
        frozen.set_function(lambda: self._counted + self._since)

    def start(self) -> None:
        """Collect and freeze what the process holds, then freeze after every collection."""
        gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
        gc.callbacks.append(self._on_gc)
        self.collect_everything()

    def stop(self) -> None:
        """Stop freezing. What is frozen stays so: unfrozen, it would be walked
        once more by a process that is about to exit."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    async def run(self) -> None:
        """Collect everything whenever the frozen objects pass their allowance."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            self._peak_sockets = max(self._peak_sockets, self._open_sockets())
            allowed = self._allowed()
            if self._counted + self._since > allowed:  # the estimate errs high
                self._count()
                if self._counted > allowed:
                    self.collect_everything()

    def collect_everything(self) -> None:
        gc.unfreeze()
        gc.collect()  # freezes what survives, through ``_on_gc``
        self._count()
        self._baseline = self._counted
        self._baseline_sockets = self._peak_sockets = self._open_sockets()
        self._full_collections.inc()

    def _allowed(self) -> float:
        """Frozen objects past which everything is collected: twice as many as
        after the last full collection, and what the sockets opened since need.

        At the peak: when a crowd's sockets close, their objects die a little
        later (an allowance that fell at once cost a walk of 929,000 objects,
        1.2 s, as 10,000 viewers left).
        """
        new_sockets = max(0, self._peak_sockets - self._baseline_sockets)
        return GROWTH_BEFORE_FULL * (self._baseline + OBJECTS_PER_SOCKET * new_sockets)

    def _count(self) -> None:
        self._counted = gc.get_freeze_count()
        self._since = 0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            # Tracked objects made minus those freed (any, frozen ones too)
            # since the last collection, never below zero.
            self._young = gc.get_count()[0]
            return
        # Whatever is not frozen yet has just survived this collection, so
        # none of what this freezes is garbage (yet).
        gc.freeze()
        # What survived, less the frozen objects that died meanwhile; high
        # when more died than were made (the count stops at zero).
        self._since += max(0, self._young - info["collected"])
