"""Access tokens: JSON Web Tokens, checked and read into an ``Identity``.

A platform that adopts giftstream already signs its users in; its tokens
come as JWTs, signed either

- with a secret shared with giftstream (HS256, ``GIFTSTREAM_JWT_SECRET``),
  for small deployments and the demo, which mints its one-click tokens
  this way (``issue_token``); or
- with the platform's private key (RS256 or ES256), whose public half it
  publishes at a JWKS URL (``server/access/jwks.py``), chosen by the
  token's key id (``kid``), so keys can be rotated.

The algorithm follows the key: a secret only ever checks HS256, a published
key only its own kind, and no other algorithm (``none`` above all) is taken.

Issuer, audience (when set), expiry and "not before" are checked, the
latter two with ``leeway_seconds`` of clock skew. Which claims name the
user, the role and the age is configurable: platforms differ.

Every refusal is an ``AuthError`` whose ``reason`` says which check failed.
Pure: no I/O; the key is handed in and the clock passed in.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from server.core.auth import AGES, ISSUABLE_ROLES, USER_ID, Identity, Role, check_user_id
from server.errors import AuthError, BadField

# A JWT signed with a 4096-bit RSA key and a few claims is under 1,500
# characters; anything much longer is not a token of the platform's.
MAX_TOKEN_LENGTH = 4096
SHARED_SECRET_ALGORITHMS = ("HS256",)
PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")
# Roles a platform's token may carry (the demo mints only ISSUABLE_ROLES).
TOKEN_ROLES = frozenset({*ISSUABLE_ROLES, Role.OPERATOR})
ADULT_AGE = 18


@dataclass(frozen=True, slots=True)
class ClaimNames:
    """Which claims of the platform's tokens say what."""

    user: str = "sub"
    role: str = "role"
    age: str = "age"


@dataclass(frozen=True, slots=True)
class TokenRules:
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    claims: ClaimNames = ClaimNames()


def issue_token(
    secret: str,
    user: str,
    role: Role,
    now: float,
    ttl_seconds: int,
    adult: bool = False,
    age: str = "unknown",
    rules: TokenRules | None = None,
) -> str:
    """An HS256 JWT for ``user`` (the demo's one-click tokens, and tests)."""
    rules = rules or TokenRules()
    if role not in ISSUABLE_ROLES:
        raise BadField(f"role must be one of {sorted(ISSUABLE_ROLES)}")
    if age not in AGES:
        raise BadField("age must be adult, minor or unknown")
    if adult and age == "minor":
        raise BadField("a token cannot say both adult and minor")
    issued = int(now)
    claims: dict[str, Any] = {
        rules.claims.user: check_user_id(user),
        rules.claims.role: str(role),
        "iat": issued,
        "exp": issued + ttl_seconds,
        # An id of its own, so that this one token can be revoked.
        "jti": secrets.token_hex(8),
    }
    if adult or age == "adult":
        claims[rules.claims.age] = "adult"
    elif age == "minor":
        claims[rules.claims.age] = "minor"
    if rules.issuer is not None:
        claims["iss"] = rules.issuer
    if rules.audience is not None:
        claims["aud"] = rules.audience
    return jwt.encode(claims, secret, algorithm="HS256")


def token_header(token: str) -> dict[str, Any]:
    """The token's header, unchecked: which algorithm and key it says it uses."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise AuthError("malformed token", reason="malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError("malformed token", reason="malformed") from exc
    return header


def decode_token(
    token: str, key: Any, algorithms: Sequence[str], rules: TokenRules, now: float
) -> dict[str, Any]:
    """The token's claims, once its signature, issuer, audience and times check out."""
    options: Any = {
        # Times are checked below against the clock passed in.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": rules.audience is not None,
        "require": ["exp", rules.claims.user],
    }
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=rules.audience,
            issuer=rules.issuer,
            options=options,
        )
    except jwt.InvalidSignatureError as exc:
        raise AuthError("bad token signature", reason="bad_signature") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthError("the token is for another audience", reason="wrong_audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthError("the token is from another issuer", reason="wrong_issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        reason = {"aud": "wrong_audience", "iss": "wrong_issuer"}.get(exc.claim, "bad_claims")
        raise AuthError(f"the token has no {exc.claim!r} claim", reason=reason) from exc
    except (jwt.InvalidTokenError, jwt.InvalidKeyError) as exc:
        raise AuthError("malformed token", reason="malformed") from exc
    _check_times(claims, rules.leeway_seconds, now)
    return claims


def _check_times(claims: dict[str, Any], leeway: int, now: float) -> None:
    expiry, not_before = claims.get("exp"), claims.get("nbf")
    if not _is_number(expiry) or (not_before is not None and not _is_number(not_before)):
        raise AuthError("the token's times are not numbers", reason="bad_claims")
    assert expiry is not None
    if expiry + leeway <= now:
        raise AuthError("token expired", reason="expired")
    if not_before is not None and not_before - leeway > now:
        raise AuthError("the token is not valid yet", reason="not_yet_valid")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def identity_of(claims: dict[str, Any], names: ClaimNames) -> Identity:
    """Who the claims say the caller is. A token without a role is a viewer's."""
    user, role = claims.get(names.user), claims.get(names.role, str(Role.VIEWER))
    if not isinstance(user, str) or not USER_ID.match(user):
        raise AuthError("the token's user is not a user id", reason="bad_claims")
    if not isinstance(role, str) or role not in TOKEN_ROLES:
        raise AuthError("the token's role is not one this server knows", reason="bad_claims")
    # Tokens of the first version said "adult": true, and that still counts.
    age = claims.get(names.age, "adult" if claims.get("adult") is True else "unknown")
    # Some platforms say only whether the user is an adult, others the age.
    if isinstance(age, bool):
        age = "adult" if age else "unknown"
    elif isinstance(age, int):
        age = "adult" if age >= ADULT_AGE else "minor"
    if age not in AGES:
        raise AuthError("the token's age is not adult, minor or unknown", reason="bad_claims")
    return Identity(
        user=user,
        role=Role(role),
        adult=age == "adult",
        age=str(age),
        token_id=token_id(claims),
        issued_at=issued_at(claims),
    )


def issued_at(claims: dict[str, Any]) -> int | None:
    """When the token was issued (s), if it says so as a number."""
    value = claims.get("iat")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def token_id(claims: dict[str, Any]) -> str | None:
    value = claims.get("jti")
    return value if isinstance(value, str) and value else None


def verify_shared_secret_token(
    secret: str, token: str, now: float, rules: TokenRules | None = None
) -> Identity:
    """A token signed with the shared secret, checked without revocations
    (the server's path adds them: ``server/access/authenticator.py``)."""
    rules = rules or TokenRules()
    header = token_header(token)
    if header.get("alg") not in SHARED_SECRET_ALGORITHMS:
        raise AuthError("the token is not signed with the shared secret", reason="unknown_key")
    return identity_of(
        decode_token(token, secret, SHARED_SECRET_ALGORITHMS, rules, now), rules.claims
    )
