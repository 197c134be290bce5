"""JWT authentication as v1.4.1 does it: ``crates/agentgateway/src/http/jwt.rs`` (``Jwt::apply``,
``validate_claims``, ``TokenError``) and ``jwt_tests.rs``'s cases, with real ES256/RS256 tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from agwlab.sandbox.proxy.jwtauth import JwtFailure, authenticate
from agwlab.sandbox.proxy.policies import JwtAuthentication, JwtProvider

ISS = "https://issuer.example"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(with_alg: bool = True) -> str:
    ec_jwk = {**json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "ec"}
    rsa_jwk = {**json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "rsa"}
    if with_alg:
        ec_jwk["alg"] = "ES256"
    return json.dumps({"keys": [ec_jwk, rsa_jwk]})


def _policy(mode: str = "Strict", audiences: tuple[str, ...] | None = ("api",)) -> JwtAuthentication:
    return JwtAuthentication(providers=(JwtProvider(ISS, _jwks(), audiences),), mode=mode)  # type: ignore[arg-type]


def _token(kid: str = "ec", key=EC_KEY, alg: str = "ES256", **claims) -> str:  # type: ignore[no-untyped-def]
    body = {"iss": ISS, "aud": "api", "sub": "alice", "exp": int(time.time()) + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else {})


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}"), ("accept", "*/*")]


def test_a_valid_token_yields_its_claims_and_is_removed() -> None:
    claims, headers, _ = authenticate(_policy(), _bearer(_token()))
    assert claims is not None and claims["sub"] == "alice"
    assert headers == [("accept", "*/*")]
    rsa_claims, _, _ = authenticate(_policy(), _bearer(_token("rsa", RSA_KEY, "PS256")))   # no alg: the RSA family
    assert rsa_claims is not None
    lower, _, _ = authenticate(_policy(), [("Authorization", f"bearer {_token()}")])   # prefix in any case
    assert lower is not None


# Tokens are made when each test runs, not at collection: a token made when pytest collects would
# be past its `exp` by the time a long run reaches it.
@pytest.mark.parametrize(("make", "reason"), [
    (lambda: "abc", "the token header is malformed: Error(InvalidToken)"),
    (lambda: _token(kid=""), "the token header does not specify a `kid`"),
    (lambda: _token(kid="nope"), 'token uses the unknown key "nope"'),
    (lambda: _token(exp=int(time.time()) - 3600), "the token is invalid or malformed: Error(ExpiredSignature)"),
    (lambda: _token(exp=None), 'the token is invalid or malformed: Error(MissingRequiredClaim("exp"))'),
    (lambda: _token(iss="https://other"), "the token is invalid or malformed: Error(InvalidIssuer)"),
    (lambda: _token(aud="other"), "the token is invalid or malformed: Error(InvalidAudience)"),
    (lambda: _token(key=ec.generate_private_key(ec.SECP256R1())),
     "the token is invalid or malformed: Error(InvalidSignature)"),
], ids=["not-a-jwt", "no-kid", "unknown-kid", "expired", "no-exp", "issuer", "audience", "signature"])
def test_a_bad_token_is_refused_with_v141s_reason(make: Callable[[], str], reason: str) -> None:
    with pytest.raises(JwtFailure) as refused:
        authenticate(_policy(), _bearer(make()))
    assert (refused.value.status, refused.value.message, refused.value.reason) == (
        401, f"authentication failure: {reason}", "JwtAuth")


def test_an_expired_token_within_the_60s_leeway_passes() -> None:
    claims, _, _ = authenticate(_policy(), _bearer(_token(exp=int(time.time()) - 30)))
    assert claims is not None


def test_modes_decide_what_happens_without_a_valid_token() -> None:
    """jwt.rs Mode: Strict requires one; Optional checks one when sent; Permissive never refuses."""
    with pytest.raises(JwtFailure, match="no bearer token found"):
        authenticate(_policy("Strict"), [("authorization", "Basic dXNlcg==")])
    assert authenticate(_policy("Optional"), [])[0] is None
    with pytest.raises(JwtFailure, match="InvalidIssuer"):
        authenticate(_policy("Optional"), _bearer(_token(iss="x")))
    claims, headers, _ = authenticate(_policy("Permissive"), _bearer(_token(iss="x")))
    assert claims is None and headers[0][0] == "authorization"    # kept: it was not verified


def test_audiences_are_checked_only_when_the_provider_lists_them() -> None:
    claims, _, _ = authenticate(_policy(audiences=None), _bearer(_token(aud="anything")))
    assert claims is not None


def test_other_locations_read_and_remove_the_token_there() -> None:
    """http/auth/mod.rs AuthorizationLocation: a header without prefix, a query parameter, a cookie."""
    from dataclasses import replace

    raw = replace(_policy(), header="x-token", prefix=None)
    claims, headers, _ = authenticate(raw, [("x-token", _token()), ("accept", "*/*")])
    assert claims is not None and headers == [("accept", "*/*")]
    query = replace(_policy(), location="queryParameter", name="access_token")
    claims, _, rest = authenticate(query, [], f"keep=yes&access_token={_token()}")
    assert claims is not None and rest == "keep=yes"          # jwt_tests.rs: "?keep=yes" is left
    cookie = replace(_policy(), location="cookie", name="session")
    claims, headers, _ = authenticate(cookie, [("cookie", f"a=1; session={_token()}")])
    assert claims is not None and headers == [("cookie", "a=1")]
