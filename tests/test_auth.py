"""Signed access tokens: issuing, verifying, and refusing everything else with AuthError."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from server.core.auth import (
    ANONYMOUS,
    ISSUABLE_ROLES,
    Identity,
    Role,
    bearer_token,
    check_user_id,
    issue_token,
    verify_token,
)
from server.errors import AuthError, BadField

SECRET = "test-secret-for-tokens-0123456789abcdef"
NOW = 1_767_225_600.0
TTL = 3600
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def signed(body: str, secret: str = SECRET) -> str:
    """A token whose signature is right for ``body``, whatever the body holds."""
    digest = hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{b64url(digest)}"


def token_with_claims(claims: object) -> str:
    return signed(b64url(json.dumps(claims).encode()))


def good_claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {"sub": "alice", "role": "viewer", "exp": int(NOW) + TTL}
    claims.update(changes)
    return claims


def viewer_token() -> str:
    return issue_token(SECRET, "alice", Role.VIEWER, NOW, TTL)


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("role", sorted(ISSUABLE_ROLES))
def test_round_trip_for_each_role(role: Role) -> None:
    token = issue_token(SECRET, "user_1-A", role, NOW, TTL)
    assert verify_token(SECRET, token, NOW) == Identity(user="user_1-A", role=role)


def test_issuable_roles_are_viewer_creator_overlay() -> None:
    assert {Role.VIEWER, Role.CREATOR, Role.OVERLAY} == ISSUABLE_ROLES


def test_token_format_is_two_base64url_parts() -> None:
    body, signature = viewer_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims == {"sub": "alice", "role": "viewer", "exp": int(NOW) + TTL}
    assert "=" not in body + signature
    assert set(body + signature) <= set(B64URL)


def test_token_is_signed_with_hmac_sha256() -> None:
    token = viewer_token()
    assert signed(token.partition(".")[0]) == token


def test_tokens_accepted_from_an_independent_signer() -> None:
    identity = verify_token(SECRET, token_with_claims(good_claims(role="creator")), NOW)
    assert identity == Identity(user="alice", role=Role.CREATOR)


def test_exp_is_issue_time_plus_ttl_in_whole_seconds() -> None:
    token = issue_token(SECRET, "alice", Role.VIEWER, NOW + 0.9, 10)
    assert verify_token(SECRET, token, NOW + 9.5).user == "alice"
    with pytest.raises(AuthError):
        verify_token(SECRET, token, NOW + 10)


def test_issue_refuses_a_role_that_is_not_issuable() -> None:
    with pytest.raises(BadField):
        issue_token(SECRET, "alice", Role.ANONYMOUS, NOW, TTL)


@pytest.mark.parametrize("user", ["", "al ice", "a" * 65, "alice:1"])
def test_issue_refuses_a_bad_user(user: str) -> None:
    with pytest.raises(BadField):
        issue_token(SECRET, user, Role.VIEWER, NOW, TTL)


# ---------------------------------------------------------------- expiry


def test_valid_until_the_last_second() -> None:
    assert verify_token(SECRET, viewer_token(), NOW + TTL - 0.001).role is Role.VIEWER


@pytest.mark.parametrize("later", [TTL, TTL + 0.5, TTL + 1, 10 * TTL])
def test_expired_when_exp_is_not_after_now(later: float) -> None:
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, viewer_token(), NOW + later)


def test_zero_ttl_is_expired_at_once() -> None:
    token = issue_token(SECRET, "alice", Role.VIEWER, NOW, 0)
    with pytest.raises(AuthError):
        verify_token(SECRET, token, NOW)


# ---------------------------------------------------------------- forgery


def test_signature_from_another_secret_is_refused() -> None:
    token = issue_token("another-secret", "alice", Role.VIEWER, NOW, TTL)
    with pytest.raises(AuthError, match="signature"):
        verify_token(SECRET, token, NOW)


def test_changed_claims_keep_no_signature() -> None:
    signature = viewer_token().partition(".")[2]
    creator_body = b64url(json.dumps(good_claims(role="creator")).encode())
    with pytest.raises(AuthError):
        verify_token(SECRET, f"{creator_body}.{signature}", NOW)


def single_character_changes(token: str) -> list[str]:
    variants = []
    for position, char in enumerate(token):
        for replacement in ("A" if char != "A" else "B", "-" if char != "-" else "_"):
            variants.append(token[:position] + replacement + token[position + 1 :])
    return variants


def test_every_single_character_change_is_refused() -> None:
    token = issue_token(SECRET, "alice", Role.CREATOR, NOW, TTL)
    variants = single_character_changes(token)
    assert len(set(variants)) == 2 * len(token)
    for variant in variants:
        with pytest.raises(AuthError):
            verify_token(SECRET, variant, NOW)


def test_every_deleted_character_is_refused() -> None:
    token = viewer_token()
    for position in range(len(token)):
        with pytest.raises(AuthError):
            verify_token(SECRET, token[:position] + token[position + 1 :], NOW)


@pytest.mark.parametrize("suffix", ["A", "=", "==", ".", ".x", " "])
def test_appended_characters_are_refused(suffix: str) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, viewer_token() + suffix, NOW)


def test_swapped_parts_are_refused() -> None:
    body, _, signature = viewer_token().partition(".")
    with pytest.raises(AuthError):
        verify_token(SECRET, f"{signature}.{body}", NOW)


# ---------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.",
        ".b",
        ".",
        "..",
        "a..b",
        "a.b.c",
        " ",
        "Bearer abc.def",
        "x" * 5000,
        "x" * 600 + "." + "y" * 600,
        "!!!!.????",
        "@@@.@@@",
        "\x00.\x00",
    ],
)
def test_malformed_tokens_raise_auth_error(token: str) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token, NOW)


def test_a_long_token_is_refused_even_when_signed() -> None:
    token = token_with_claims(good_claims(pad="x" * 1000))
    with pytest.raises(AuthError, match="malformed"):
        verify_token(SECRET, token, NOW)


@pytest.mark.parametrize("body", ["!!!!", "not*base64", "a", "ab=c", "===="])
def test_signed_body_that_is_not_base64_json(body: str) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, signed(body), NOW)


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"\xff\xfe\xfd", b"{", b'{"sub": "alice"', b"\x00"]
)
def test_signed_body_that_decodes_to_garbage(raw: bytes) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, signed(b64url(raw)), NOW)


@pytest.mark.parametrize("claims", [[], ["alice"], "alice", 12, None, True, 1.5])
def test_claims_that_are_not_an_object(claims: object) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify_token(SECRET, token_with_claims(claims), NOW)


@pytest.mark.parametrize("missing", ["sub", "role", "exp"])
def test_missing_claims(missing: str) -> None:
    claims = good_claims()
    del claims[missing]
    with pytest.raises(AuthError):
        verify_token(SECRET, token_with_claims(claims), NOW)


@pytest.mark.parametrize(
    "exp", [True, False, float(NOW + TTL), str(int(NOW) + TTL), None, [int(NOW) + TTL]]
)
def test_exp_must_be_an_integer(exp: object) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token_with_claims(good_claims(exp=exp)), NOW)


@pytest.mark.parametrize("role", ["anonymous", "admin", "Viewer", "", None, 1, 1.5, True])
def test_role_must_be_issuable(role: object) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token_with_claims(good_claims(role=role)), NOW)


@pytest.mark.parametrize("sub", ["", "al ice", "a" * 65, "alice:x", None, 7, ["alice"]])
def test_sub_must_be_a_user_id(sub: object) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token_with_claims(good_claims(sub=sub)), NOW)


def test_extra_claims_are_ignored() -> None:
    identity = verify_token(SECRET, token_with_claims(good_claims(aud="x", iat=0)), NOW)
    assert identity == Identity(user="alice", role=Role.VIEWER)


def test_auth_error_is_the_unauthorized_wire_error() -> None:
    with pytest.raises(AuthError) as caught:
        verify_token(SECRET, "abc", NOW)
    assert (caught.value.code, caught.value.http_status) == ("unauthorized", 401)


# ---------------------------------------------------------------- user ids


@pytest.mark.parametrize("user", ["a", "alice", "Alice_B-9", "x" * 64, "0", "-", "_"])
def test_good_user_ids(user: str) -> None:
    assert check_user_id(user) == user


@pytest.mark.parametrize(
    "user",
    [
        "",
        "x" * 65,
        "al ice",
        "alice!",
        "al:ice",
        "al.ice",
        "al/ice",
        "ålice",
        " alice",
        "{w:alice}",
        None,
        5,
        b"alice",
        ["alice"],
    ],
)
def test_bad_user_ids(user: object) -> None:
    with pytest.raises(BadField):
        check_user_id(user)


# ---------------------------------------------------------------- Authorization header


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer abc.def", "abc.def"),
        ("BEARER abc.def", "abc.def"),
        ("Bearer   abc.def  ", "abc.def"),
    ],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic YWxpY2U6eA==", "abc.def", "Token abc"],
)
def test_bearer_token_refused(header: str | None) -> None:
    with pytest.raises(AuthError):
        bearer_token(header)


def test_bearer_token_then_verify() -> None:
    token = viewer_token()
    assert verify_token(SECRET, bearer_token(f"Bearer {token}"), NOW).user == "alice"


# ---------------------------------------------------------------- identities


@pytest.mark.parametrize(
    ("role", "can_send"),
    [(Role.VIEWER, True), (Role.CREATOR, True), (Role.OVERLAY, False), (Role.ANONYMOUS, False)],
)
def test_can_send_per_role(role: Role, can_send: bool) -> None:
    assert Identity(user="alice", role=role).can_send is can_send


@pytest.mark.parametrize("role", list(Role))
def test_no_user_cannot_send(role: Role) -> None:
    assert Identity(user=None, role=role).can_send is False


def test_anonymous_identity() -> None:
    assert ANONYMOUS.user is None
    assert ANONYMOUS.role is Role.ANONYMOUS
    assert ANONYMOUS.can_send is False
    assert Role.ANONYMOUS not in ISSUABLE_ROLES
