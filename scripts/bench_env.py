"""What ``scripts/bench`` and ``scripts/bench_scaleout.py`` share.

The environment of a ``giftstream serve`` process under a benchmark: demo
mode (so that the load makes its users through the API), one token secret
for every process, a data directory of its own, quiet logs, and the
per-socket and per-user gift limits raised to ceilings that are not what is
measured. And the machine's CPU model, for the recorded results.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

GIFT_RATE_CEILING = "1000000"


def server_environment(token_secret: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment minus any GIFTSTREAM_ or REDIS_URL, plus the bench's.

    ``settings`` are more settings by name (``combo_window_ms="500"``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTSTREAM_")}
    env.pop("REDIS_URL", None)
    env.update(
        PYTHONUNBUFFERED="1",
        GIFTSTREAM_DEMO="1",
        GIFTSTREAM_JWT_SECRET=token_secret,
        GIFTSTREAM_DATA_DIR=str(data_dir),
        GIFTSTREAM_LOG_LEVEL="WARNING",
        # Ceilings, not policies: otherwise each sender is held to 20-30 gifts/s.
        GIFTSTREAM_GIFT_RATE_PER_SECOND=GIFT_RATE_CEILING,
        GIFTSTREAM_GIFT_RATE_BURST=GIFT_RATE_CEILING,
        GIFTSTREAM_USER_GIFT_RATE_PER_SECOND=GIFT_RATE_CEILING,
        GIFTSTREAM_USER_GIFT_RATE_BURST=GIFT_RATE_CEILING,
    )
    env.update({f"GIFTSTREAM_{name.upper()}": value for name, value in settings.items()})
    return env


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"
