"""Room sockets opened with a token revoked since: closed within a second.

A token is checked when a room socket opens; the socket may then stay open
for hours. So each process reads the revocations of the last minutes
(``Revocations.recent``, one ZRANGE) once a second and closes, with close
code 4401 ``TOKEN_REVOKED``, each socket it holds whose token a new one
takes back: that token by its id, or all of a user's tokens issued up to a
time. The client's reconnect is then refused at the handshake (401,
``revoked``) until it brings a token issued after.

A revocation is applied at every look during its first seconds, not once:
a socket whose handshake passed the deny list just before the revocation
was written may join its room a moment after the first look. Applying it
again is harmless, as no socket opened later matches it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from server.access.revocations import Revocations
from server.core.auth import Identity, Role
from server.core.protocol import CloseCode
from server.errors import GiftError
from server.rooms.hub import Hub

log = logging.getLogger(__name__)

LOOK_EVERY_SECONDS = 1.0
# How long after a process first sees a revocation it keeps applying it.
APPLY_FOR_SECONDS = 5.0
CLOSE_REASON = "token revoked; sign in again"


def revokes(note: str, identity: Identity) -> bool:
    """Whether the revocation ``note`` (``revocations.py``) takes back the token
    ``identity`` came with. Overlays came with the room's key, not a token."""
    if identity.user is None or identity.role is Role.OVERLAY:
        return False
    kind, _, rest = note.partition(":")
    if kind == "token":
        return identity.token_id is not None and identity.token_id == rest
    if kind == "user":
        before, _, user = rest.partition(":")
        if identity.user != user or not before.isdigit():
            return False
        # As the handshake's check: a token that says nothing of when it was
        # issued is taken back with the rest.
        return identity.issued_at is None or identity.issued_at <= int(before)
    return False


class RevocationWatch:
    def __init__(self, revocations: Revocations, hub: Hub) -> None:
        self._revocations = revocations
        self._hub = hub
        # Each revocation in the recent set, and when this process first saw it.
        self._first_seen: dict[str, float] = {}

    async def look(self, now: float | None = None) -> int:
        """Close the sockets that a revocation of the last seconds takes back;
        how many were closed."""
        now = time.monotonic() if now is None else now
        notes = await self._revocations.recent()
        self._first_seen = {note: self._first_seen.get(note, now) for note in notes}
        fresh = [note for note, seen in self._first_seen.items() if now - seen <= APPLY_FOR_SECONDS]
        if not fresh:
            return 0
        closed = 0
        for member in self._hub.every_member():
            if any(revokes(note, member.identity) for note in fresh):
                member.writer.close(CloseCode.TOKEN_REVOKED, CLOSE_REASON)
                closed += 1
        if closed:
            log.info("room sockets of revoked tokens closed", extra={"sockets": closed})
        return closed

    async def run(self) -> None:
        """Look once a second until cancelled; a Redis outage skips a look."""
        while True:
            await asyncio.sleep(LOOK_EVERY_SECONDS)
            try:
                await self.look()
            except (GiftError, RedisError) as exc:
                log.warning("revocations not read this second", extra={"error": repr(exc)})
