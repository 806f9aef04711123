"""A token in, an ``Identity`` out: the one check behind every caller.

The HTTP API (``Authorization: Bearer``) and the room sockets (``?token=``)
both come here. The token's header says how it was signed: HS256 is
checked with the shared secret, RS256 and ES256 with the key of that id in
the platform's JWKS. Then its claims (``server/core/tokens.py``), then the
deny list (``revocations.py``). Each refusal is an ``AuthError`` with a
``reason``.
"""

from __future__ import annotations

from typing import Any

from server.access.jwks import JwksKeys
from server.access.revocations import Revocations
from server.core.auth import Identity
from server.core.tokens import (
    PUBLIC_KEY_ALGORITHMS,
    SHARED_SECRET_ALGORITHMS,
    TokenRules,
    decode_token,
    identity_of,
    issued_at,
    token_header,
    token_id,
)
from server.errors import AuthError


class Authenticator:
    def __init__(
        self,
        rules: TokenRules,
        revocations: Revocations,
        secret: str | None = None,
        jwks: JwksKeys | None = None,
    ) -> None:
        if secret is None and jwks is None:
            raise ValueError("tokens need a shared secret, a JWKS URL, or both")
        self.rules = rules
        self._revocations = revocations
        self._secret = secret
        self._jwks = jwks

    async def identify(self, token: str, now: float) -> Identity:
        claims = await self.claims(token, now)
        identity = identity_of(claims, self.rules.claims)
        assert identity.user is not None
        await self._revocations.require_valid(identity.user, token_id(claims), issued_at(claims))
        return identity

    async def claims(self, token: str, now: float) -> dict[str, Any]:
        """The token's claims, its signature and times checked (not revocations)."""
        header = token_header(token)
        algorithm = header.get("alg")
        if algorithm in SHARED_SECRET_ALGORITHMS:
            if self._secret is None:
                raise AuthError("this server takes no shared-secret tokens", reason="unknown_key")
            return decode_token(token, self._secret, [algorithm], self.rules, now)
        if algorithm in PUBLIC_KEY_ALGORITHMS:
            kid = header.get("kid")
            if self._jwks is None:
                raise AuthError("this server has no JWKS to check the token", reason="unknown_key")
            if not isinstance(kid, str) or not kid:
                raise AuthError("the token names no key (kid)", reason="malformed")
            key = await self._jwks.key(kid)
            if key is None:
                raise AuthError("the token's key is not in the JWKS", reason="unknown_key")
            if key.algorithm_name != algorithm:
                # A key is used only with its own algorithm, whatever the token says.
                raise AuthError("the token's algorithm is not its key's", reason="unknown_key")
            return decode_token(token, key.key, [algorithm], self.rules, now)
        raise AuthError("the token's algorithm is not one this server takes", reason="malformed")
