"""The platform's public keys, from its JSON Web Key Set URL.

The set is fetched when first needed and kept for ``MAX_AGE_SECONDS``. A
token signed with a key id (``kid``) not in the set is the sign of a key
rotation: the set is fetched again at once, but at most once every
``refetch_seconds`` (``GIFTSTREAM_JWKS_REFETCH_SECONDS``), so that tokens
with made-up key ids cannot make the server hammer the platform's URL. A
fetch that fails keeps the keys held.

The fetch is a plain blocking HTTP GET (the standard library's), run in a
worker thread: it happens once in minutes, and needs no client of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300.0
FETCH_TIMEOUT_SECONDS = 5.0
# A key set is small; a body this large is not one.
MAX_BODY_BYTES = 256 * 1024


def fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"accept": "application/json"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        body = response.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ValueError("the key set is larger than a key set can be")
    return json.loads(body)


class JwksKeys:
    """The keys of one JWKS URL, by key id."""

    def __init__(
        self,
        url: str,
        refetch_seconds: float = 10.0,
        fetch: Callable[[str], Any] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the JWKS URL must be http:// or https://")
        self.url = url
        self._fetch = fetch
        self._refetch_seconds = refetch_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        # For /metrics and the tests: how often the set was fetched.
        self.fetches = 0

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this id, fetching the set when it is old or lacks it."""
        if self._stale() or (kid not in self._keys and self._may_refetch()):
            async with self._lock:
                # Another caller may have fetched while this one waited.
                if self._stale() or (kid not in self._keys and self._may_refetch()):
                    await self._refresh()
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > MAX_AGE_SECONDS

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._refetch_seconds

    async def _refresh(self) -> None:
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            document = await asyncio.to_thread(self._fetch, self.url)
            self._keys = keys_by_id(document)
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            # The keys held stay: a platform briefly unreachable must not
            # sign everyone out.
            log.warning("could not fetch the JWKS (%s); keeping %d keys", exc, len(self._keys))


def keys_by_id(document: Any) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document that have a key id.

    Keys for other uses (``"use": "enc"``) and of kinds this server does not
    verify with are left out rather than failing the whole set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS document is an object with a list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError):
            log.warning("skipping a JWKS key this server cannot use (kid %s)", kid[:40])
    return keys
