"""Access tokens: JWTs issued and checked, everything else refused with a reason.

The pure part (``server/core/tokens.py``): the shared-secret path the demo
and small deployments use, the claims read into an identity, and each
refusal typed by its ``reason``. Tokens signed with published keys, and
revocation, are checked against a running server in ``test_jwt_server.py``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from server.core.auth import (
    ANONYMOUS,
    ISSUABLE_ROLES,
    Identity,
    Role,
    bearer_token,
    check_user_id,
)
from server.core.tokens import (
    ClaimNames,
    TokenRules,
    decode_token,
    identity_of,
    issue_token,
    verify_shared_secret_token,
)
from server.errors import AuthError, BadField

SECRET = "test-secret-for-tokens-0123456789abcdef"
NOW = 1_767_225_600.0
TTL = 3600
RULES = TokenRules(issuer="https://platform.test", audience="giftstream", leeway_seconds=30)


def good_claims(**changes: object) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "alice", "role": "viewer", "exp": int(NOW) + TTL}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ...}


def signed(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def verify(token: str, now: float = NOW, rules: TokenRules | None = None) -> Identity:
    return verify_shared_secret_token(SECRET, token, now, rules)


def reason_of(token: str, now: float = NOW, rules: TokenRules | None = None) -> object:
    with pytest.raises(AuthError) as caught:
        verify(token, now, rules)
    assert (caught.value.code, caught.value.http_status) == ("unauthorized", 401)
    return caught.value.details["reason"]


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("role", sorted(ISSUABLE_ROLES))
def test_round_trip_for_each_role(role: Role) -> None:
    token = issue_token(SECRET, "user_1-A", role, NOW, TTL)
    assert verify(token) == Identity(user="user_1-A", role=role)


def test_an_issued_token_is_a_standard_hs256_jwt_with_an_id() -> None:
    token = issue_token(SECRET, "alice", Role.CREATOR, NOW, TTL, adult=True, rules=RULES)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    # Any JWT library checks it with the secret.
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="giftstream", options={"verify_exp": False}
    )
    assert claims["sub"] == "alice"
    assert claims["role"] == "creator"
    assert claims["age"] == "adult"
    assert (claims["iss"], claims["aud"]) == ("https://platform.test", "giftstream")
    assert (claims["iat"], claims["exp"]) == (int(NOW), int(NOW) + TTL)
    other = issue_token(SECRET, "alice", Role.CREATOR, NOW, TTL, rules=RULES)
    assert claims["jti"] != jwt.decode(other, options={"verify_signature": False})["jti"]
    assert verify(token, rules=RULES) == Identity("alice", Role.CREATOR, adult=True, age="adult")


def test_a_token_from_an_independent_signer_is_accepted() -> None:
    token = signed(good_claims(role="creator", age="minor"))
    assert verify(token) == Identity(user="alice", role=Role.CREATOR, age="minor")


def test_issue_refuses_what_cannot_be_issued() -> None:
    with pytest.raises(BadField):
        issue_token(SECRET, "alice", Role.ANONYMOUS, NOW, TTL)
    with pytest.raises(BadField):
        issue_token(SECRET, "alice", Role.OPERATOR, NOW, TTL)  # never from the demo
    with pytest.raises(BadField):
        issue_token(SECRET, "al ice", Role.VIEWER, NOW, TTL)
    with pytest.raises(BadField):
        issue_token(SECRET, "alice", Role.VIEWER, NOW, TTL, adult=True, age="minor")


# ---------------------------------------------------------------- times


def test_valid_until_the_skew_allowed_after_expiry() -> None:
    token = signed(good_claims())
    rules = TokenRules(leeway_seconds=30)
    assert verify(token, NOW + TTL + 29, rules).user == "alice"
    assert reason_of(token, NOW + TTL + 30, rules) == "expired"


@pytest.mark.parametrize("later", [TTL, TTL + 1, 10 * TTL])
def test_expired_without_skew(later: float) -> None:
    assert reason_of(signed(good_claims()), NOW + later, TokenRules(leeway_seconds=0)) == "expired"


def test_not_before_is_checked_with_the_skew() -> None:
    token = signed(good_claims(nbf=int(NOW) + 100))
    rules = TokenRules(leeway_seconds=30)
    assert reason_of(token, NOW, rules) == "not_yet_valid"
    assert verify(token, NOW + 71, rules).user == "alice"


@pytest.mark.parametrize("exp", [True, "1767229200", None, [1], {"at": 1}])
def test_exp_must_be_a_number(exp: object) -> None:
    reason = reason_of(signed(good_claims(exp=exp)))
    assert reason in ("bad_claims", "malformed")


# ---------------------------------------------------------------- issuer, audience


def test_the_issuer_and_audience_are_checked_when_set() -> None:
    right = good_claims(iss="https://platform.test", aud="giftstream")
    assert verify(signed(right), rules=RULES).user == "alice"
    wrong = {
        "wrong_audience": [
            good_claims(iss="https://platform.test", aud="other"),
            good_claims(iss="https://platform.test"),
        ],
        "wrong_issuer": [
            good_claims(iss="https://evil.test", aud="giftstream"),
            good_claims(aud="giftstream"),
        ],
    }
    for reason, claim_sets in wrong.items():
        for claims in claim_sets:
            assert reason_of(signed(claims), rules=RULES) == reason, claims
    # An audience among several is enough.
    several = good_claims(iss="https://platform.test", aud=["shop", "giftstream"])
    assert verify(signed(several), rules=RULES).user == "alice"


# ---------------------------------------------------------------- signatures, forgeries


def test_a_signature_from_another_secret_is_refused() -> None:
    assert reason_of(signed(good_claims(), secret="another-secret-0123456789abcdefghijk")) == (
        "bad_signature"
    )


def test_changed_claims_keep_no_signature() -> None:
    header, _, signature = signed(good_claims()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(good_claims(role="creator")).encode())
    token = f"{header}.{forged.rstrip(b'=').decode()}.{signature}"
    assert reason_of(token) == "bad_signature"


def test_every_single_character_change_is_refused() -> None:
    token = signed(good_claims())
    for position in range(len(token)):
        for replacement in ("A", "-"):
            if token[position] == replacement:
                continue
            changed = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(AuthError):
                verify(changed)


@pytest.mark.parametrize("algorithm", ["none", "HS384", "HS512"])
def test_no_other_algorithm_is_taken_with_the_secret(algorithm: str) -> None:
    if algorithm == "none":
        token = jwt.encode(good_claims(), "", algorithm="none")
    else:
        token = signed(good_claims(), secret=SECRET * 2, algorithm=algorithm)
    assert reason_of(token) == "unknown_key"


def test_a_public_key_token_is_not_checked_with_the_secret() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(good_claims(), key, algorithm="RS256", headers={"kid": "k1"})
    assert reason_of(token) == "unknown_key"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "..", " ", "Bearer abc.def", "x" * 5000, "\x00.\x00.\x00"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert reason_of(token) in ("malformed", "unknown_key")


def test_a_long_token_is_refused_even_when_signed() -> None:
    assert reason_of(signed(good_claims(pad="x" * 5000))) == "malformed"


# ---------------------------------------------------------------- claims


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_missing_claims(missing: str) -> None:
    assert reason_of(signed(good_claims(**{missing: ...}))) in ("bad_claims", "malformed")


def test_a_token_without_a_role_is_a_viewers() -> None:
    assert verify(signed(good_claims(role=...))).role is Role.VIEWER


@pytest.mark.parametrize("role", ["anonymous", "admin", "Viewer", "", None, 1, True])
def test_the_role_must_be_one_this_server_knows(role: object) -> None:
    assert reason_of(signed(good_claims(role=role))) == "bad_claims"


def test_an_operator_token_comes_only_from_the_platform() -> None:
    identity = verify(signed(good_claims(role="operator")))
    assert identity.role is Role.OPERATOR
    assert not identity.can_send
    assert not identity.holds_wallet


@pytest.mark.parametrize("sub", ["", "al ice", "a" * 65, "alice:x", None, 7, ["alice"]])
def test_the_user_must_be_a_user_id(sub: object) -> None:
    assert reason_of(signed(good_claims(sub=sub))) in ("bad_claims", "malformed")


@pytest.mark.parametrize(
    ("age", "adult", "said"),
    [
        ("adult", True, "adult"),
        ("minor", False, "minor"),
        ("unknown", False, "unknown"),
        (True, True, "adult"),
        (False, False, "unknown"),
        (17, False, "minor"),
        (18, True, "adult"),
        (..., False, "unknown"),
    ],
)
def test_the_age_claim_in_its_forms(age: object, adult: bool, said: str) -> None:
    identity = verify(signed(good_claims(age=age)))
    assert (identity.adult, identity.age) == (adult, said)


def test_the_first_versions_adult_claim_still_says_adult() -> None:
    identity = verify(signed(good_claims(adult=True)))
    assert (identity.adult, identity.age) == (True, "adult")


@pytest.mark.parametrize("age", ["old", "", None, 1.5, ["adult"]])
def test_an_age_claim_of_another_form_is_refused(age: object) -> None:
    assert reason_of(signed(good_claims(age=age))) == "bad_claims"


def test_the_claims_that_say_who_are_configurable() -> None:
    names = ClaimNames(user="uid", role="giftstream_role", age="age_group")
    claims = {"uid": "bob", "giftstream_role": "creator", "age_group": "adult", "exp": NOW + 60}
    token = signed(claims)
    rules = TokenRules(claims=names)
    decoded = decode_token(token, SECRET, ["HS256"], rules, NOW)
    assert identity_of(decoded, names) == Identity("bob", Role.CREATOR, adult=True, age="adult")
    # Without the user claim configured, the token says no one.
    assert reason_of(token) in ("bad_claims", "malformed")


def test_extra_claims_are_ignored() -> None:
    identity = verify(signed(good_claims(scope="x", iat=0, jti="t-1")))
    assert identity == Identity(user="alice", role=Role.VIEWER)


# ---------------------------------------------------------------- user ids


@pytest.mark.parametrize("user", ["a", "alice", "Alice_B-9", "x" * 64, "0", "-", "_"])
def test_good_user_ids(user: str) -> None:
    assert check_user_id(user) == user


@pytest.mark.parametrize(
    "user",
    ["", "x" * 65, "al ice", "alice!", "al:ice", "al.ice", "ålice", "{w:alice}", None, 5, b"a"],
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


# ---------------------------------------------------------------- identities


@pytest.mark.parametrize(
    ("role", "can_send"),
    [
        (Role.VIEWER, True),
        (Role.CREATOR, True),
        (Role.OVERLAY, False),
        (Role.OPERATOR, False),
        (Role.ANONYMOUS, False),
    ],
)
def test_can_send_per_role(role: Role, can_send: bool) -> None:
    assert Identity(user="alice", role=role).can_send is can_send
    assert Identity(user="alice", role=role).holds_wallet is can_send


@pytest.mark.parametrize("role", list(Role))
def test_no_user_cannot_send(role: Role) -> None:
    assert Identity(user=None, role=role).can_send is False


def test_anonymous_identity() -> None:
    assert ANONYMOUS.user is None
    assert ANONYMOUS.role is Role.ANONYMOUS
    assert ANONYMOUS.can_send is False
    assert Role.ANONYMOUS not in ISSUABLE_ROLES
