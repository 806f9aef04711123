"""A token bucket: how many requests a connection may make, and how fast.

Pure: the clock is passed in, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_second: float
    burst: int
    tokens: float | None = None  # None until first use, when the bucket starts full
    updated: float = 0.0

    def allow(self, now: float) -> bool:
        """Take one token if there is one; False means the request is over the limit."""
        if self.tokens is None:
            self.tokens, self.updated = float(self.burst), now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_second)
        self.updated = now
        # The epsilon forgives float rounding for a client sending exactly at the rate.
        if self.tokens < 1.0 - 1e-9:
            return False
        self.tokens -= 1.0
        return True
