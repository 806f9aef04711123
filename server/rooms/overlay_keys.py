"""Overlay keys: how a streamer's OBS browser source proves which room it shows.

An OBS browser source cannot sign in, so its URL carries a long random key
(`/overlay.html?room=carol&key=...`). The key opens the room's socket as the
creator's overlay: it sees the room, and it cannot spend. A creator who
leaked the URL regenerates the key, and the old URL stops working at once.
"""

from __future__ import annotations

import hmac
import secrets

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.store.calls import as_text, guarded


class OverlayKeys:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _key(self, creator: str) -> str:
        return f"{WalletKeys(self._prefix, creator).creator}:overlay_key"

    async def current(self, creator: str) -> str:
        """The creator's overlay key, made on first use."""
        await guarded(self._redis.set(self._key(creator), secrets.token_urlsafe(24), nx=True))
        return as_text(await guarded(self._redis.get(self._key(creator))))

    async def regenerate(self, creator: str) -> str:
        key = secrets.token_urlsafe(24)
        await guarded(self._redis.set(self._key(creator), key))
        return key

    async def opens(self, room: str, key: str) -> bool:
        """Whether ``key`` is the overlay key of ``room``'s creator (constant time)."""
        stored = await guarded(self._redis.get(self._key(room)))
        if stored is None or not key.isascii():
            return False
        return hmac.compare_digest(as_text(stored).encode(), key.encode())
