"""Tokens taken back before they expire: one token, or all of a user's.

- One token, by its id (the ``jti`` claim): ``gs:revoked:<jti>``, kept until
  the token would have expired anyway (plus the clock skew allowed).
- All of a user's tokens issued until now: ``gs:{w:<user>}:revoked_before``
  holds that time (s); a token of theirs issued then or earlier (its
  ``iat``), or saying nothing of when it was issued, is refused. Tokens
  issued later work: the user signs in again.

Each check is two reads in one round trip. Revocation refuses new room
sockets and every HTTP call; a socket opened before stays open until it
closes (docs/protocol.md).
"""

from __future__ import annotations

from redis.asyncio import Redis

from server.core.keys import WalletKeys, revoked_token_key
from server.errors import AuthError, BadField
from server.store.calls import as_text, guarded

MAX_TOKEN_ID_LENGTH = 256


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

    async def revoke_user(self, user: str, now: float) -> int:
        """Refuse every token of ``user`` issued up to now; returns that time (s)."""
        before = int(now)
        key = WalletKeys(self._prefix, user).revoked_before
        await guarded(self._redis.set(key, str(before)))
        return before

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
