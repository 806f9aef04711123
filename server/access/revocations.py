"""Tokens taken back before they expire: one token, or all of a user's.

- One token, by its id (the ``jti`` claim): ``gs:revoked:<jti>``, kept until
  the token would have expired anyway (plus the clock skew allowed).
- All of a user's tokens issued until now: ``gs:{w:<user>}:revoked_before``
  holds that time (s); a token of theirs issued then or earlier (its
  ``iat``), or saying nothing of when it was issued, is refused. Tokens
  issued later work: the user signs in again.

Each check is two reads in one round trip. Revocation refuses new room
sockets and every HTTP call. Each revocation is also noted for a few
minutes in ``gs:revocations:recent`` (a sorted set by when it was made),
which every process reads once a second to close the room sockets it holds
that were opened with a revoked token (``revocation_watch.py``).
"""

from __future__ import annotations

from redis.asyncio import Redis

from server.core.keys import WalletKeys, recent_revocations_key, revoked_token_key
from server.errors import AuthError, BadField
from server.store.calls import as_text, guarded

MAX_TOKEN_ID_LENGTH = 256
# How long a revocation stays in the recent set: far longer than any process
# takes to read it (once a second), short enough for the set to stay small.
RECENT_SECONDS = 600


def revoked_token_note(jti: str) -> str:
    """A revoked token in the recent set; the id last, as it may hold anything."""
    return f"token:{jti}"


def revoked_user_note(user: str, before: int) -> str:
    """All of a user's tokens issued up to ``before`` (s), in the recent set."""
    return f"user:{before}:{user}"


def check_token_id(jti: object) -> str:
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_TOKEN_ID_LENGTH:
        raise BadField(f"jti must be a token id of 1 to {MAX_TOKEN_ID_LENGTH} characters")
    return jti


class Revocations:
    def __init__(self, redis: Redis, key_prefix: str, leeway_seconds: int) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._leeway = leeway_seconds

    async def revoke_token(self, jti: str, expires_at: int, now: float) -> None:
        """Refuse the token with this id until it expires."""
        ttl = max(1, int(expires_at - now) + self._leeway)
        await guarded(self._redis.set(revoked_token_key(self._prefix, jti), "1", ex=ttl))
        await self._note(revoked_token_note(jti), now)

    async def revoke_user(self, user: str, now: float) -> int:
        """Refuse every token of ``user`` issued up to now; returns that time (s)."""
        before = int(now)
        key = WalletKeys(self._prefix, user).revoked_before
        await guarded(self._redis.set(key, str(before)))
        await self._note(revoked_user_note(user, before), now)
        return before

    async def _note(self, note: str, now: float) -> None:
        """After the deny list: a process that reads the note finds the token refused."""
        key = recent_revocations_key(self._prefix)
        now_ms = int(now * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {note: now_ms})
            pipe.zremrangebyscore(key, "-inf", now_ms - RECENT_SECONDS * 1000)
            pipe.expire(key, RECENT_SECONDS)
            await guarded(pipe.execute())

    async def recent(self) -> list[str]:
        """The revocations noted in the last minutes (``revoked_*_note``)."""
        notes = await guarded(self._redis.zrange(recent_revocations_key(self._prefix), 0, -1))
        return [as_text(note) for note in notes]

    async def require_valid(self, user: str, jti: str | None, issued_at: int | None) -> None:
        """Raises ``AuthError`` (reason ``revoked``) for a token taken back."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(WalletKeys(self._prefix, user).revoked_before)
            if jti is not None:
                pipe.exists(revoked_token_key(self._prefix, jti))
            replies = await guarded(pipe.execute())
        before = replies[0]
        if before is not None and (issued_at is None or issued_at <= int(as_text(before))):
            raise AuthError("this user's tokens were revoked; sign in again", reason="revoked")
        if jti is not None and replies[1]:
            raise AuthError("this token was revoked", reason="revoked")
