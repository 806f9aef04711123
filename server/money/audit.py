"""The operator's actions, each kept with who, what, when, before and after.

One stream for the deployment (``audit``), capped at about ``KEPT`` entries:
an operator's action is rare, and the record of it is what an auditor asks
for first. Written after the action it records; an action whose record
could not be written still took effect and is logged by the caller's error.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from server.store.calls import as_text, guarded

KEPT = 100_000
LISTED = 200


class Audit:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._key = f"{key_prefix}:audit"

    async def record(
        self, who: str, action: str, target: str, before: Any, after: Any, now_ms: int
    ) -> None:
        entry: dict[Any, Any] = {
            "who": who,
            "action": action,
            "target": target,
            "before": json.dumps(before, sort_keys=True),
            "after": json.dumps(after, sort_keys=True),
            "ts": now_ms,
        }
        await guarded(self._redis.xadd(self._key, entry, maxlen=KEPT, approximate=True))

    async def _read(self, count: int) -> list[Any]:
        return list(await self._redis.xrevrange(self._key, count=count) or [])

    async def recent(self, count: int = LISTED) -> list[dict[str, Any]]:
        """The newest ``count`` actions, newest first."""
        entries: list[Any] = await guarded(self._read(count)) or []
        listed = []
        for entry_id, raw in entries:
            fields = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
            listed.append(
                {
                    "id": as_text(entry_id),
                    "who": fields["who"],
                    "action": fields["action"],
                    "target": fields["target"],
                    "before": json.loads(fields["before"]),
                    "after": json.loads(fields["after"]),
                    "ts": int(fields["ts"]),
                }
            )
        return listed
