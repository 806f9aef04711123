"""The server's resident memory over the run, sampled from /proc."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.loadtest.serverproc import rss_bytes


@dataclass
class MemoryLog:
    pid: int | None
    before: int | None = None  # before the load test's sockets opened
    connected: int | None = None  # all sockets open, before sending
    end: int | None = None  # after the run, its sockets closed
    by_second: dict[int, int] = field(default_factory=dict)

    def read(self) -> int | None:
        return None if self.pid is None else rss_bytes(self.pid)

    def sample(self, second: int) -> int | None:
        rss = self.read()
        if rss is not None:
            self.by_second[second] = rss
        return rss

    @property
    def peak(self) -> int | None:
        seen = [v for v in (self.before, self.connected, self.end, *self.by_second.values()) if v]
        return max(seen) if seen else None
