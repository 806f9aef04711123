"""How long to wait before reconnecting, and before retrying a temporary refusal."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays double from ``initial`` seconds up to ``maximum``, jittered."""

    initial: float = 0.5
    maximum: float = 15.0

    def delay(self, failures: int) -> float:
        """The wait before attempt number ``failures`` + 1."""
        ceiling = min(self.maximum, self.initial * 2 ** min(failures, 30))
        return jitter(ceiling)


def jitter(seconds: float) -> float:
    """Somewhere from half of ``seconds`` to all of it, so that a room's viewers
    dropped together do not all come back at the same moment."""
    return seconds * (0.5 + random.random() * 0.5)
