"""Who is calling: the platform's tokens checked against its keys and revocations.

- ``jwks``: the keys a JSON Web Key Set URL publishes, fetched and cached,
  fetched again for a key id not seen yet (key rotation).
- ``revocations``: the deny list in Redis, by token id and by user.
- ``authenticator``: a token in, an ``Identity`` (or a typed ``AuthError``)
  out, for the HTTP API and the room sockets alike.
- ``revocation_watch``: the room sockets of tokens revoked since they
  opened, closed (4401) within a second or two on every process.

The token's format and its claims are the pure part, in ``server/core/auth.py``.
"""
