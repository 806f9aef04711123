"""Prometheus metrics, served at ``/metrics``.

Each app gets its own registry, so that several apps in one process (as in
some tests) never collide on metric names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Fine between 10 and 150 ms, where a storm's acks fall and the 25 ms aim sits.
ACK_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.035)
ACK_BUCKETS += (0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "giftstream_connections", "Open room WebSockets", ["role"], registry=r
        )
        self.gifts = Counter(
            "giftstream_gifts", "Gifts committed (duplicates excluded)", ["tier"], registry=r
        )
        self.coins_spent = Counter("giftstream_coins_spent", "Coins debited for gifts", registry=r)
        self.coins_recharged = Counter(
            "giftstream_coins_recharged", "Coins credited by recharges", registry=r
        )
        self.errors = Counter(
            "giftstream_request_errors", "Requests answered with an error", ["code"], registry=r
        )
        self.ack_seconds = Histogram(
            "giftstream_gift_ack_seconds",
            "From a gift frame received to its ack written",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.slow_consumers = Counter(
            "giftstream_slow_consumers_dropped", "Viewers dropped for falling behind", registry=r
        )

    def sampled_counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A counter kept elsewhere (a plain int on a hot path), read at scrape time."""
        self.registry.register(_Sampled(name, documentation, read))

    def sampled_gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A level kept elsewhere (a queue's length), read at scrape time."""
        self.registry.register(_Sampled(name, documentation, read, gauge=True))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Sampled(Collector):
    def __init__(
        self, name: str, documentation: str, read: Callable[[], float], gauge: bool = False
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read
        self._gauge = gauge

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily if self._gauge else CounterMetricFamily
        yield family(self._name, self._documentation, value=self._read())
