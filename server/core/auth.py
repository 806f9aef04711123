"""Signed access tokens: who is connecting, in which role, until when.

The platform's own login issues tokens with the shared secret; giftstream
only verifies them and never sees a password. A token is two base64url
parts joined by a dot: a compact JSON claim set and its HMAC-SHA256.

    {"sub": "alice", "role": "viewer", "exp": 1767225600}

Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from enum import StrEnum

from server.errors import AuthError, BadField

USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


class Role(StrEnum):
    VIEWER = "viewer"
    CREATOR = "creator"
    OVERLAY = "overlay"
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

    @property
    def can_send(self) -> bool:
        """Only signed-in viewers and creators spend coins."""
        return self.user is not None and self.role in (Role.VIEWER, Role.CREATOR)


ANONYMOUS = Identity(user=None, role=Role.ANONYMOUS)


def check_user_id(user: object) -> str:
    if not isinstance(user, str) or not USER_ID.match(user):
        raise BadField("user must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return user


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, body: str) -> bytes:
    digest = hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest).encode("ascii")


AGES = ("adult", "minor", "unknown")


def issue_token(
    secret: str,
    user: str,
    role: Role,
    now: float,
    ttl_seconds: int,
    adult: bool = False,
    age: str = "unknown",
) -> str:
    if role not in ISSUABLE_ROLES:
        raise BadField(f"role must be one of {sorted(ISSUABLE_ROLES)}")
    claims: dict[str, object] = {
        "sub": check_user_id(user),
        "role": str(role),
        "exp": int(now) + ttl_seconds,
    }
    if age not in AGES:
        raise BadField("age must be adult, minor or unknown")
    if adult and age == "minor":
        raise BadField("a token cannot say both adult and minor")
    if adult or age == "adult":
        claims["adult"] = True  # absent when not: most tokens stay as short as before
    if age == "minor":
        claims["age"] = "minor"
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_sign(secret, body).decode('ascii')}"


def _claims(secret: str, token: str) -> dict[str, object]:
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or len(token) > 1024 or not token.isascii():
        raise AuthError("malformed token")
    # Constant-time comparison: a forger learns nothing from the timing.
    if not hmac.compare_digest(_sign(secret, body), signature.encode("ascii")):
        raise AuthError("bad token signature")
    try:
        claims = json.loads(_b64decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthError("malformed token") from exc
    if not isinstance(claims, dict):
        raise AuthError("malformed token")
    return claims


def verify_token(secret: str, token: str, now: float) -> Identity:
    claims = _claims(secret, token)
    expiry, user, role = claims.get("exp"), claims.get("sub"), claims.get("role")
    if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry <= now:
        raise AuthError("token expired")
    if not isinstance(user, str) or not USER_ID.match(user) or not isinstance(role, str):
        raise AuthError("malformed token")
    if role not in ISSUABLE_ROLES:
        raise AuthError("malformed token")
    adult = claims.get("adult", False)
    age = claims.get("age", "adult" if adult is True else "unknown")
    if not isinstance(adult, bool) or age not in AGES or (adult and age == "minor"):
        raise AuthError("malformed token")
    return Identity(user=user, role=Role(str(role)), adult=adult, age=str(age))


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("an Authorization: Bearer <token> header is required")
    return token.strip()
