"""A tiny JSON client of giftstream's HTTP API, on the standard library alone.

The load generator only calls the API while it sets up (tokens, orders,
sandbox payments, overlay keys), so blocking ``urllib`` calls run in threads
are enough and the command needs no HTTP library beyond Python's own.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 30.0
# Straight to the target, as the room sockets go: a proxy would be measured too.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiError(Exception):
    """The API answered with an error (its problem document's code) or not at all."""

    def __init__(self, path: str, status: int | None, code: str, detail: str) -> None:
        super().__init__(f"{path}: {status or 'no answer'} {code}: {detail}")
        self.status = status
        self.code = code


class Api:
    def __init__(self, base_url: str, concurrency: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        # Enough parallel setup calls to be quick, few enough not to look like a flood.
        self._slots = asyncio.Semaphore(concurrency)

    async def get(self, path: str, token: str | None = None) -> dict[str, Any]:
        return await self._call("GET", path, None, token)

    async def post(
        self, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        return await self._call("POST", path, body if body is not None else {}, token)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        async with self._slots:
            return await asyncio.to_thread(self._blocking_call, method, path, body, token)

    def _blocking_call(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        headers = {"accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                return _json_object(path, response.read())
        except urllib.error.HTTPError as exc:
            problem = _problem(exc.read())
            raise ApiError(
                path, exc.code, str(problem.get("code", "http_error")), str(problem.get("detail"))
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(path, None, "unreachable", str(exc)) from exc


def _json_object(path: str, raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ApiError(path, 200, "not_json", raw[:80].decode(errors="replace")) from exc
    if not isinstance(document, dict):
        raise ApiError(path, 200, "not_json", "not a JSON object")
    return document


def _problem(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        return {"detail": raw[:80].decode(errors="replace")}
    return document if isinstance(document, dict) else {}
