"""Measurements that merge: histograms, counters and a per-second timeline.

Every worker process keeps its own ``Stats``; the runner adds them up. All of
it turns into plain dicts (``to_dict``/``from_dict``) to cross the process
boundary and to land in the JSON report.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Latency quantiles the report shows, as fractions.
QUANTILES = {"p50": 0.50, "p99": 0.99, "p99.9": 0.999}


def _bucket(micros: int) -> int:
    """``micros`` kept to three significant digits: at most 1% low, and few keys."""
    if micros < 1000:
        return micros
    step = int(10 ** (int(math.log10(micros)) - 2))
    return micros // step * step


@dataclass
class Histogram:
    """Latencies in microseconds, bucketed to three significant digits; max is exact."""

    counts: Counter[int] = field(default_factory=Counter)
    maximum: int = 0

    def add(self, seconds: float) -> None:
        micros = max(0, int(seconds * 1_000_000))
        self.counts[_bucket(micros)] += 1
        if micros > self.maximum:
            self.maximum = micros

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)
        self.maximum = max(self.maximum, other.maximum)

    def quantile_ms(self, fraction: float) -> float | None:
        """The smallest bucket below which ``fraction`` of the values lie, in ms."""
        total = self.count
        if total == 0:
            return None
        # The rank of the value asked for, 1-based: p99.9 of 1000 values is the 999th.
        rank = max(1, math.ceil(fraction * total))
        seen = 0
        for micros in sorted(self.counts):
            seen += self.counts[micros]
            if seen >= rank:
                return min(micros, self.maximum) / 1000
        return self.maximum / 1000

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {
            name: self.quantile_ms(q) for name, q in QUANTILES.items()
        }
        out["max"] = self.maximum / 1000 if self.count else None
        out["count"] = self.count
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "max": self.maximum}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        counts = Counter({int(k): int(v) for k, v in data["counts"].items()})
        return cls(counts=counts, maximum=int(data["max"]))


@dataclass
class Second:
    """What happened during one second of the run (by the time it was seen)."""

    acks: int = 0
    events: int = 0
    frames: int = 0
    errors: int = 0
    ack: Histogram = field(default_factory=Histogram)
    delivery: Histogram = field(default_factory=Histogram)

    def merge(self, other: Second) -> None:
        self.acks += other.acks
        self.events += other.events
        self.frames += other.frames
        self.errors += other.errors
        self.ack.merge(other.ack)
        self.delivery.merge(other.delivery)

    def to_dict(self) -> dict[str, Any]:
        return {
            "acks": self.acks,
            "events": self.events,
            "frames": self.frames,
            "errors": self.errors,
            "ack": self.ack.to_dict(),
            "delivery": self.delivery.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Second:
        return cls(
            acks=data["acks"],
            events=data["events"],
            frames=data["frames"],
            errors=data["errors"],
            ack=Histogram.from_dict(data["ack"]),
            delivery=Histogram.from_dict(data["delivery"]),
        )


@dataclass
class RoomStats:
    """One room as this process's sockets saw it."""

    sockets: int = 0
    lost_gaps: int = 0
    max_seq: int = 0
    # Sockets that stay to the end (viewers and overlays, not senders): their
    # last seq, to find events they never got at the tail of the run.
    last_seqs: list[int] = field(default_factory=list)
    # Gift events each of those sockets saw after its welcome.
    gift_events: list[int] = field(default_factory=list)
    events: int = 0

    def merge(self, other: RoomStats) -> None:
        self.sockets += other.sockets
        self.lost_gaps += other.lost_gaps
        self.max_seq = max(self.max_seq, other.max_seq)
        self.last_seqs.extend(other.last_seqs)
        self.gift_events.extend(other.gift_events)
        self.events += other.events

    def lost_tail(self) -> int:
        return sum(self.max_seq - last for last in self.last_seqs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sockets": self.sockets,
            "lost_gaps": self.lost_gaps,
            "max_seq": self.max_seq,
            "last_seqs": self.last_seqs,
            "gift_events": self.gift_events,
            "events": self.events,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoomStats:
        return cls(**data)


# Counters of gift requests; every one of them is in the report.
GIFT_COUNTERS = (
    "sent",  # fresh requests sent
    "retries_sent",  # a request id sent again after its ack
    "acked",  # fresh requests acknowledged (duplicate: false)
    "retries_acked_duplicate",  # retries answered duplicate: true with the first seq
    "retries_not_duplicate",  # retries answered as if new: a broken idempotency
    "fresh_acked_duplicate",  # a new id answered duplicate: true: a broken idempotency
    "refused",  # answered with an error frame
    "unanswered",  # no answer by the end of the drain
    "own_events_missing",  # acked, but the sender never saw the gift's room event
    "skipped_no_coins",  # not sent: the sender's coins ran out
)


@dataclass
class Stats:
    """Everything one process measured; ``merge`` adds another process's."""

    gifts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    events: int = 0
    frames: int = 0
    connected: int = 0
    connect_failed: int = 0
    connect_seconds: float = 0.0
    # CPU this process used while sending: near 1 s a second, it was the bottleneck.
    cpu_seconds: float = 0.0
    ack: Histogram = field(default_factory=Histogram)
    delivery: Histogram = field(default_factory=Histogram)
    # How late this process's event loop woke from short sleeps while
    # sending: its own delay, which is in every latency it measured.
    loop_lag: Histogram = field(default_factory=Histogram)
    timeline: dict[int, Second] = field(default_factory=dict)
    rooms: dict[str, RoomStats] = field(default_factory=dict)

    def second(self, index: int) -> Second:
        bucket = self.timeline.get(index)
        if bucket is None:
            bucket = self.timeline[index] = Second()
        return bucket

    def room(self, room: str) -> RoomStats:
        stats = self.rooms.get(room)
        if stats is None:
            stats = self.rooms[room] = RoomStats()
        return stats

    def merge(self, other: Stats) -> None:
        self.gifts.update(other.gifts)
        self.errors.update(other.errors)
        self.events += other.events
        self.frames += other.frames
        self.connected += other.connected
        self.connect_failed += other.connect_failed
        self.connect_seconds = max(self.connect_seconds, other.connect_seconds)
        self.cpu_seconds += other.cpu_seconds
        self.ack.merge(other.ack)
        self.delivery.merge(other.delivery)
        self.loop_lag.merge(other.loop_lag)
        for index, bucket in other.timeline.items():
            self.second(index).merge(bucket)
        for name, room in other.rooms.items():
            self.room(name).merge(room)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gifts": dict(self.gifts),
            "errors": dict(self.errors),
            "events": self.events,
            "frames": self.frames,
            "connected": self.connected,
            "connect_failed": self.connect_failed,
            "connect_seconds": self.connect_seconds,
            "cpu_seconds": self.cpu_seconds,
            "ack": self.ack.to_dict(),
            "delivery": self.delivery.to_dict(),
            "loop_lag": self.loop_lag.to_dict(),
            "timeline": {str(k): v.to_dict() for k, v in self.timeline.items()},
            "rooms": {k: v.to_dict() for k, v in self.rooms.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        return cls(
            gifts=Counter(data["gifts"]),
            errors=Counter(data["errors"]),
            events=data["events"],
            frames=data["frames"],
            connected=data["connected"],
            connect_failed=data["connect_failed"],
            connect_seconds=data["connect_seconds"],
            cpu_seconds=data["cpu_seconds"],
            ack=Histogram.from_dict(data["ack"]),
            delivery=Histogram.from_dict(data["delivery"]),
            loop_lag=Histogram.from_dict(data["loop_lag"]),
            timeline={int(k): Second.from_dict(v) for k, v in data["timeline"].items()},
            rooms={k: RoomStats.from_dict(v) for k, v in data["rooms"].items()},
        )
