"""Who is calling: a user id, a role and what the platform says of their age.

The platform's own login signs its users in; giftstream reads who they are
from the platform's tokens (``server/core/tokens.py``) and never sees a
password. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from server.errors import AuthError, BadField

USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


class Role(StrEnum):
    VIEWER = "viewer"
    CREATOR = "creator"
    OVERLAY = "overlay"
    # The platform's staff: the operator API (server/api/admin_api.py) takes
    # their tokens; they hold no wallet. Only the platform issues these.
    OPERATOR = "operator"
    # Not issued: the identity of a socket that came without a token.
    ANONYMOUS = "anonymous"


ISSUABLE_ROLES = frozenset({Role.VIEWER, Role.CREATOR, Role.OVERLAY})


@dataclass(frozen=True, slots=True)
class Identity:
    user: str | None
    role: Role
    # The platform says this user is 18 or older (the token's "adult" claim).
    # A creator must be, to switch gifting on (server/money/creators.py).
    adult: bool = False
    # What the token says of the user's age: adult, minor or unknown (its
    # "age" claim; "adult" too when it only says adult). The operator's word
    # overrides it (server/money/ages.py).
    age: str = "unknown"
    # The token's id (``jti``) and when it was issued (``iat``, s), if it said:
    # what a revocation is matched against (server/access/revocation_watch.py).
    # Not part of who the caller is: two tokens of one user are one identity.
    token_id: str | None = field(default=None, compare=False)
    issued_at: int | None = field(default=None, compare=False)

    @property
    def can_send(self) -> bool:
        """Only signed-in viewers and creators spend coins."""
        return self.holds_wallet

    @property
    def holds_wallet(self) -> bool:
        """Viewers and creators have wallets; overlays and operators do not."""
        return self.user is not None and self.role in (Role.VIEWER, Role.CREATOR)


ANONYMOUS = Identity(user=None, role=Role.ANONYMOUS)


def check_user_id(user: object) -> str:
    if not isinstance(user, str) or not USER_ID.match(user):
        raise BadField("user must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return user


AGES = ("adult", "minor", "unknown")


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("an Authorization: Bearer <token> header is required", reason="missing")
    return token.strip()
