"""The OpenAPI 3.1 document of a running app, from its routes' descriptions.

Each HTTP route's endpoint carries a ``Description`` (``server/api/openapi.py``);
this walks the app's route table and turns each into an operation: path and
query parameters, the body, the answers, and one problem-document answer
per error status, whose ``code`` enumerates the codes of the ``GiftError``
classes the route can raise (the classes give status and code). The room
WebSocket, not HTTP, is listed under the ``x-websockets`` extension. A route
without a description is left out of ``paths`` and named under
``x-undescribed``, where the tests look for it.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from starlette.routing import BaseRoute, Route, WebSocketRoute

from server.api.hosts import ANY_HOST_PATHS
from server.api.openapi import JSON, Answer, Auth, Description, Schema, description_of
from server.api.schemas import PROBLEM, components
from server.core.payments import SIGNATURE_HEADER
from server.core.protocol import SUBPROTOCOLS
from server.errors import BadHost, GiftError

OPENAPI_VERSION = "3.1.0"
PROBLEM_JSON = "application/problem+json"
# The code ``server.app.internal_error`` answers an unexpected fault with, on any route.
INTERNAL_CODE = "internal"
PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")

SECURITY_SCHEMES: dict[str, Schema] = {
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The platform's sign-in token (docs/protocol.md#access-tokens).",
    },
    "operatorToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "GIFTSTREAM_OPERATOR_TOKEN, or a platform token with role operator.",
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + the raw body>, "
        "keyed by the provider's shared secret.",
    },
}
SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "viewer": [{"userToken": []}],
    "creator": [{"userToken": []}],
    "operator": [{"operatorToken": []}],
    "signature": [{"webhookSignature": []}],
    # The empty requirement: a call without credentials is taken too.
    "optional": [{}, {"userToken": []}],
}
AUTH_WORDS: dict[Auth, str] = {
    "viewer": "a viewer's or a creator's token",
    "creator": "a creator's token",
    "operator": "the operator token",
    "signature": "a body signed by the provider",
    "optional": "none; a viewer's token adds the caller's own part",
}
INFO_DESCRIPTION = """\
The HTTP API of giftstream, generated from the route descriptions in `server/api`.
Errors are problem documents (`application/problem+json`) whose `code` is stable;
each error answer below lists the codes it can carry.

The room WebSocket, `/ws/rooms/{room_id}`, is not HTTP: it is listed under
`x-websockets`, and described in [docs/protocol.md](docs/protocol.md#connecting-to-a-room).
Paths not listed here serve the demo pages (`client_demo/`)."""


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    websockets: dict[str, Any] = {}
    undescribed: list[str] = []
    operation_ids: set[str] = set()
    for route in routes:
        if isinstance(route, WebSocketRoute):
            description = description_of(route.endpoint)
            if description is None:
                undescribed.append(f"WEBSOCKET {route.path}")
            else:
                websockets[openapi_path(route.path)] = websocket_item(route.path, description)
        elif isinstance(route, Route):
            description = description_of(route.endpoint)
            for method in http_methods(route):
                if description is None:
                    undescribed.append(f"{method} {route.path}")
                    continue
                operation = operation_of(method, route.path, description)
                if operation["operationId"] in operation_ids:
                    raise ValueError(f"two routes for {method} {route.path}")
                operation_ids.add(operation["operationId"])
                paths.setdefault(openapi_path(route.path), {})[method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "giftstream",
            "version": package_version(),
            "description": INFO_DESCRIPTION,
        },
        "tags": [{"name": name} for name in sorted(tags_of(paths))],
        "paths": paths,
        "components": {
            "schemas": components(),
            "responses": {"Internal": internal_answer()},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-websockets": websockets,
    }
    if undescribed:
        document["x-undescribed"] = undescribed
    return document


def http_methods(route: Route) -> list[str]:
    # Starlette adds HEAD to every GET route: not an operation of its own here.
    return sorted(method for method in route.methods or () if method != "HEAD")


def openapi_path(path: str) -> str:
    """``/x/{id:int}`` as OpenAPI writes it: ``/x/{id}``."""
    return PATH_PARAMETER.sub(lambda match: "{" + match[1] + "}", path)


def path_parameters(path: str, description: Description) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": description.path.get(name, {"type": "string"}),
        }
        for name in PATH_PARAMETER.findall(path)
    ]


def query_parameters(description: Description) -> list[dict[str, Any]]:
    parameters = []
    for name, schema in description.query.items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if "description" in schema:
            parameter["description"] = schema["description"]
        parameters.append(parameter | {"schema": schema})
    return parameters


def operation_of(method: str, path: str, description: Description) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "summary": description.summary,
        "tags": [description.tag or tag_of(path)],
    }
    notes = "\n\n".join(filter(None, [description.notes, auth_sentence(description.auth)]))
    if notes:
        operation["description"] = notes
    parameters = path_parameters(path, description) + query_parameters(description)
    if parameters:
        operation["parameters"] = parameters
    if description.body is not None:
        operation["requestBody"] = {
            "required": description.body_required,
            "content": {JSON: {"schema": description.body}},
        }
    operation["responses"] = responses_of(path, description)
    operation["security"] = SECURITY[description.auth] if description.auth else []
    operation["x-auth"] = description.auth or "none"
    return operation


def operation_id(method: str, path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", openapi_path(path))
    return "_".join([method.lower(), *words])


def tag_of(path: str) -> str:
    """``/api/<tag>/...``; every path outside the API is the service's own."""
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "api" else "service"


def auth_sentence(auth: Auth | None) -> str:
    return f"Credentials: {AUTH_WORDS[auth] if auth is not None else 'none'}."


def responses_of(path: str, description: Description) -> dict[str, Any]:
    answers: dict[str, Any] = {
        str(status): answer_object(status, answer)
        for status, answer in sorted(description.answers.items())
    }
    errors = list(description.errors)
    if path not in ANY_HOST_PATHS:
        errors.append(BadHost)
    for status, codes in sorted(codes_by_status(errors).items()):
        if str(status) in answers:
            raise ValueError(f"{path}: {status} is both an answer and an error")
        answers[str(status)] = error_answer(status, codes)
    answers["500"] = {"$ref": "#/components/responses/Internal"}
    return answers


def answer_object(status: int, answer: Answer) -> dict[str, Any]:
    return {
        "description": answer.description or HTTPStatus(status).phrase,
        "content": {media: {"schema": schema} for media, schema in answer.content.items()},
    }


def codes_by_status(errors: Sequence[type[GiftError]]) -> dict[int, list[str]]:
    grouped: dict[int, set[str]] = {}
    for error in errors:
        grouped.setdefault(error.http_status, set()).add(error.code)
    return {status: sorted(codes) for status, codes in grouped.items()}


def problem_schema(status: int, codes: list[str]) -> Schema:
    """The problem document, its ``code`` narrowed to ``codes`` and its ``status`` to one."""
    narrowed = {"code": {"enum": codes}, "status": {"const": status}}
    # The second part only narrows two fields; the document's fields are Problem's.
    return {"allOf": [PROBLEM, {"properties": narrowed, "additionalProperties": True}]}


def error_answer(status: int, codes: list[str]) -> dict[str, Any]:
    return {
        "description": f"{HTTPStatus(status).phrase}: {', '.join(codes)}",
        "content": {PROBLEM_JSON: {"schema": problem_schema(status, codes)}},
        "x-codes": codes,
    }


def internal_answer() -> dict[str, Any]:
    return {
        "description": "An unexpected fault, logged with the answer's request_id",
        "content": {PROBLEM_JSON: {"schema": problem_schema(500, [INTERNAL_CODE])}},
        "x-codes": [INTERNAL_CODE],
    }


def websocket_item(path: str, description: Description) -> dict[str, Any]:
    return {
        "summary": description.summary,
        "description": description.notes,
        "parameters": path_parameters(path, description) + query_parameters(description),
        "subprotocols": [str(name) for name in SUBPROTOCOLS],
        "x-auth": description.auth or "none",
        "docs": "docs/protocol.md#connecting-to-a-room",
    }


def tags_of(paths: dict[str, dict[str, Any]]) -> set[str]:
    return {tag for item in paths.values() for op in item.values() for tag in op["tags"]}


def package_version() -> str:
    try:
        return importlib.metadata.version("giftstream")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "0+unknown"
