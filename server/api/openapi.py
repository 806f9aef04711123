"""Each route says, next to its handler, what it takes and what it answers.

``@describe(...)`` stores a ``Description`` on the handler: its summary, the
JSON Schema of its body and of each answer, the ``GiftError`` classes it
can raise, and who may call it. ``/openapi.json`` is built from these
(``server/api/openapi_spec.py``), so the API is described once, in code.

Put ``@describe`` outermost, above ``@typed_errors``: the route table holds
the outermost function, and that is where the description is read.

Some errors follow from a route's other traits rather than from its own
code: a route behind a token can answer ``unauthorized``, ``not_allowed``
and (its revocation check reads Redis) ``unavailable``; a route that reads
a JSON body, ``bad_request`` and ``body_too_large``. ``Description.errors``
adds them, so that no route has to repeat them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from server.errors import (
    AuthError,
    BadRequest,
    BodyTooLarge,
    GiftError,
    NotAllowed,
    NotFound,
    Unavailable,
)

Schema = dict[str, Any]
# Who may call a route:
# - viewer: a platform token of a user who holds a wallet (viewer or creator);
# - creator: a platform token with role creator;
# - operator: the operator token, or a platform token with role operator;
# - signature: no token, a body signed with a shared secret (providers' callbacks);
# - optional: anyone; a viewer's token adds the caller's own part to the answer.
# None: anyone, no credentials read.
Auth = Literal["viewer", "creator", "operator", "signature", "optional"]

_TOKEN_ERRORS: tuple[type[GiftError], ...] = (AuthError, NotAllowed, Unavailable)
IMPLIED_BY_AUTH: Mapping[Auth, tuple[type[GiftError], ...]] = {
    "viewer": _TOKEN_ERRORS,
    "creator": _TOKEN_ERRORS,
    # A server without an operator token answers 404, as if the API were not there.
    "operator": (*_TOKEN_ERRORS, NotFound),
    "signature": (AuthError,),
    "optional": _TOKEN_ERRORS,
}
IMPLIED_BY_BODY: tuple[type[GiftError], ...] = (BadRequest, BodyTooLarge)

JSON = "application/json"
ATTRIBUTE = "__giftstream_description__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Answer:
    """One status's answer: a body per media type (JSON unless said otherwise)."""

    content: Mapping[str, Schema]
    description: str = ""


def json_answer(schema: Schema, description: str = "") -> Answer:
    return Answer({JSON: schema}, description)


def text_answer(media_type: str, description: str) -> Answer:
    return Answer({media_type: {"type": "string"}}, description)


@dataclass(frozen=True)
class Description:
    summary: str
    answers: Mapping[int, Answer]
    body: Schema | None = None
    body_required: bool = True
    raises: tuple[type[GiftError], ...] = ()
    auth: Auth | None = None
    query: Mapping[str, Schema] = field(default_factory=dict)
    path: Mapping[str, Schema] = field(default_factory=dict)
    tag: str | None = None
    # From the handler's docstring: what a reader of the spec wants to know.
    notes: str = ""

    @property
    def errors(self) -> tuple[type[GiftError], ...]:
        """Every error the route can answer with: its own, and those its auth
        and its body imply; each class once, in that order."""
        implied = IMPLIED_BY_AUTH[self.auth] if self.auth is not None else ()
        from_body = IMPLIED_BY_BODY if self.body is not None else ()
        return tuple(dict.fromkeys((*self.raises, *implied, *from_body)))


def describe(
    *,
    summary: str,
    answers: Mapping[int, Schema | Answer],
    body: Schema | None = None,
    body_required: bool = True,
    errors: Sequence[type[GiftError]] = (),
    auth: Auth | None = None,
    query: Mapping[str, Schema] | None = None,
    path: Mapping[str, Schema] | None = None,
    tag: str | None = None,
) -> Callable[[F], F]:
    """Store the route's description on its handler (which is returned as it is).

    ``answers`` maps a status to its answer: a JSON Schema for a JSON body, or
    an ``Answer`` for other media types. ``query`` and ``path`` map parameter
    names to schemas (a path parameter not named is a string).
    """

    def attach(handler: F) -> F:
        description = Description(
            summary=summary,
            answers={
                status: answer if isinstance(answer, Answer) else json_answer(answer)
                for status, answer in answers.items()
            },
            body=body,
            body_required=body_required,
            raises=tuple(errors),
            auth=auth,
            query=dict(query or {}),
            path=dict(path or {}),
            tag=tag,
            notes=inspect.getdoc(handler) or "",
        )
        setattr(handler, ATTRIBUTE, description)
        return handler

    return attach


def description_of(endpoint: object) -> Description | None:
    """The description ``@describe`` stored on a route's endpoint; None without one."""
    found = getattr(endpoint, ATTRIBUTE, None)
    return found if isinstance(found, Description) else None
