"""JWT authentication at the gateway (``traffic.jwtAuthentication``), as agentgateway v1.4.1 does it.

Follows ``crates/agentgateway/src/http/jwt.rs`` (``Jwt::apply`` and ``validate_claims``) and the
401 of ``proxy/mod.rs``:

* the token is read from ``Authorization: Bearer <token>`` (the prefix matched in any case), or the
  policy's header and prefix, query parameter or cookie (``http/auth/mod.rs``
  ``AuthorizationLocation``); a CEL ``expression`` location is not evaluated by the sandbox (no
  token is found there);
* none, in ``Strict`` mode: **401** ``authentication failure: no bearer token found``; in
  ``Optional`` and ``Permissive`` modes the request goes on without claims;
* the header names no ``kid``, or a ``kid`` no provider has, or the signature, ``exp`` (required,
  60 s leeway), ``nbf``, ``iss`` or ``aud`` (when the provider lists audiences) do not hold: **401**
  ``authentication failure: <reason>`` (``Permissive`` lets it through without claims);
* a valid token: its claims are kept for later policies (CEL ``jwt.sub``, ``jwt.<claim>``), its
  ``sub`` goes to the access log as ``jwt.sub``, and the header (query parameter, cookie) is
  **removed** before the request goes upstream.

The 401 is ``text/plain`` with no ``www-authenticate`` header (only MCP authentication,
``jwtAuthentication.mcp``, adds one); the log and ``agentgateway_requests_total`` say
``reason=JwtAuth``. Keys without ``alg`` accept their family's algorithms (RSA: RS/PS 256-512;
EC: ES256, ES384; OKP: EdDSA), as v1.4.1 infers them.

The reasons are jsonwebtoken's error kinds as v1.4.1 prints them (``Error(InvalidSignature)``,
``Error(ExpiredSignature)``, ``Error(MissingRequiredClaim("exp"))`` ...); PyJWT does the checking.

Example:
    >>> from .policies import JwtAuthentication
    >>> authenticate(JwtAuthentication(providers=()), [("accept", "*/*")])
    Traceback (most recent call last):
    ...
    agwlab.sandbox.proxy.jwtauth.JwtFailure: authentication failure: no bearer token found
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt

from .errors import GatewayError
from .policies import JwtAuthentication, JwtProvider

__all__ = ["JwtFailure", "authenticate", "validate"]

_LEEWAY = 60  # jsonwebtoken's default leeway, seconds
_FAMILIES = {
    "RSA": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
    "EC": ["ES256", "ES384"],
    "OKP": ["EdDSA"],
}


class JwtFailure(GatewayError):
    """v1.4.1's ``ProxyError::JwtAuthenticationFailure``: 401, reason ``JwtAuth``."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, f"authentication failure: {detail}", "JwtAuth")


@functools.lru_cache(maxsize=64)
def _keys(jwks: str) -> dict[str, tuple[Any, list[str]]]:
    """``kid`` -> (public key, accepted algorithms) of one inline JWKS (keys it cannot use are left out)."""
    keys: dict[str, tuple[Any, list[str]]] = {}
    try:
        entries = json.loads(jwks).get("keys") or []
    except (ValueError, AttributeError):
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("kid"):
            continue
        family = _FAMILIES.get(str(entry.get("kty")))
        if family is None:
            continue
        algorithms = [entry["alg"]] if entry.get("alg") else family
        try:
            key = jwt.PyJWK(entry, algorithm=algorithms[0]).key
        except jwt.PyJWTError:
            continue
        keys[str(entry["kid"])] = (key, algorithms)
    return keys


def _reason(exc: jwt.PyJWTError) -> str:
    """jsonwebtoken's ``ErrorKind`` for a PyJWT failure, printed as v1.4.1 prints it (``{:?}``)."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f'Error(MissingRequiredClaim("{exc.claim}"))'
    kinds = [
        (jwt.ExpiredSignatureError, "ExpiredSignature"),
        (jwt.ImmatureSignatureError, "ImmatureSignature"),
        (jwt.InvalidAudienceError, "InvalidAudience"),
        (jwt.InvalidIssuerError, "InvalidIssuer"),
        (jwt.InvalidAlgorithmError, "InvalidAlgorithm"),
        (jwt.InvalidSignatureError, "InvalidSignature"),
    ]
    kind = next((name for cls, name in kinds if isinstance(exc, cls)), "InvalidToken")
    return f"Error({kind})"


def validate(providers: tuple[JwtProvider, ...], token: str) -> dict[str, Any]:
    """The claims of a valid token (v1.4.1 ``Jwt::validate_claims``).

    Raises:
        JwtFailure: why the token is refused, worded as v1.4.1 words it.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise JwtFailure("the token header is malformed: Error(InvalidToken)") from None
    kid = header.get("kid")
    if not kid:
        raise JwtFailure("the token header does not specify a `kid`")
    for provider in providers:
        found = _keys(provider.jwks).get(str(kid))
        if found is None:
            continue
        key, algorithms = found
        try:
            claims = jwt.decode(
                token, key, algorithms=algorithms, issuer=provider.issuer,
                audience=list(provider.audiences) if provider.audiences else None, leeway=_LEEWAY,
                options={"require": ["exp"], "verify_aud": provider.audiences is not None},
            )
        except jwt.PyJWTError as exc:
            raise JwtFailure(f"the token is invalid or malformed: {_reason(exc)}") from None
        return dict(claims)
    raise JwtFailure(f"token uses the unknown key {json.dumps(str(kid))}")


def _cookies(value: str) -> list[tuple[str, str]]:
    pairs = (part.strip().partition("=") for part in value.split(";"))
    return [(k, v) for k, _, v in pairs if k]


def _extract(policy: JwtAuthentication, headers: list[tuple[str, str]], query: str
             ) -> tuple[str | None, list[tuple[str, str]], str]:
    """The token where the policy says it is, and the headers and query string without it."""
    if policy.location == "queryParameter":
        params = parse_qsl(query, keep_blank_values=True)
        token = next((v for k, v in params if k == policy.name), None)
        return token, headers, urlencode([(k, v) for k, v in params if k != policy.name])
    if policy.location == "cookie":
        token, kept = None, []
        for k, v in headers:
            if k.lower() == "cookie":
                pairs = _cookies(v)
                token = token or next((cv for ck, cv in pairs if ck == policy.name), None)
                rest = "; ".join(f"{ck}={cv}" for ck, cv in pairs if ck != policy.name)
                if rest:
                    kept.append((k, rest))
            else:
                kept.append((k, v))
        return token, kept, query
    if policy.location == "expression":
        return None, headers, query
    name = policy.header.lower()
    value = next((v for k, v in headers if k.lower() == name), None)
    prefix = policy.prefix or ""
    token = value[len(prefix):] if value is not None and value[:len(prefix)].lower() == prefix.lower() else None
    return token, [(k, v) for k, v in headers if k.lower() != name], query


def authenticate(policy: JwtAuthentication, headers: list[tuple[str, str]], query: str = ""
                 ) -> tuple[dict[str, Any] | None, list[tuple[str, str]], str]:
    """Apply the policy to a request's headers and query string.

    Returns:
        The verified claims (``None`` when the request goes on without any), and the headers and
        query string to send on (the token removed once it was verified).

    Raises:
        JwtFailure: the request is refused (401).
    """
    token, without, rest = _extract(policy, headers, query)
    if not token:
        if policy.mode == "Strict":
            raise JwtFailure("no bearer token found")
        return None, headers, query
    try:
        claims = validate(policy.providers, token)
    except JwtFailure:
        if policy.mode == "Permissive":
            return None, headers, query
        raise
    return claims, without, rest
