"""A fault in a handler is a JSON 500 with a request id, logged once, without the body."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.requests import Request

from server.app import internal_error


def posted(body: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/orders",
        "raw_path": b"/api/orders",
        "query_string": b"token=SECRET",
        "headers": [(b"host", b"127.0.0.1")],
    }
    return Request(scope, receive)


async def test_the_answer_and_the_log_line_share_a_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = posted(b'{"package": "SECRET-BODY"}')
    await request.body()  # the handler had read it
    with caplog.at_level(logging.ERROR, logger="server.app"):
        response = await internal_error(request, RuntimeError("a bug"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    answer = json.loads(bytes(response.body))
    assert (answer["code"], answer["temporary"]) == ("internal", True)
    assert len(answer["request_id"]) == 16
    [record] = caplog.records
    assert record.request_id == answer["request_id"]  # type: ignore[attr-defined]
    assert (record.method, record.path) == ("POST", "/api/orders")  # type: ignore[attr-defined]
    assert record.exc_info is not None
    logged = caplog.text + repr(vars(record))
    assert "SECRET-BODY" not in logged
    assert "SECRET" not in record.path  # type: ignore[attr-defined]


async def test_two_faults_get_two_ids() -> None:
    first = json.loads(bytes((await internal_error(posted(b""), RuntimeError())).body))
    second = json.loads(bytes((await internal_error(posted(b""), RuntimeError())).body))
    assert first["request_id"] != second["request_id"]
