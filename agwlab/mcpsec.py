"""Securing MCP (notebook 09): two MCP servers behind one route, JWT authentication, tool rules.

* **Two servers, one route**: an ``AgentgatewayBackend`` with two ``spec.mcp.targets`` (the
  website fetcher and the lab's notes server). agentgateway multiplexes them: ``initialize`` is
  answered by the gateway, ``tools/list`` merges both lists with each tool named
  ``<target>_<tool>`` (``fetcher_fetch``, ``notes_add_note``), and ``tools/call`` goes to the
  target before the first ``_``.
* **JWT authentication**: ``traffic.jwtAuthentication`` on the route checks a bearer token
  against a JSON Web Key Set. :func:`make_key` makes a signing key here, :func:`jwt_policy`
  puts its *public* half in the policy, :func:`token` signs a token for a caller.
* **Authorization**: ``backend.mcp.authorization`` rules (CEL over ``jwt.*`` and
  ``mcp.tool.*``) decide which caller sees and may call which tool.

Keys and tokens never print in full: a :class:`SigningKey` shows its ``kid`` only and a
:class:`Token` its first and last characters and its claims.

Example:
    >>> [t["name"] for t in tools_backend().obj["spec"]["mcp"]["targets"]]
    ['fetcher', 'notes']
    >>> key = make_key()
    >>> tok = token(key, "alice", role="editor")
    >>> "alice" in repr(tok) and tok.value not in repr(tok)
    True
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import httpx

from .aio import run_sync
from .errors import LabError
from .lab import Lab
from .manifests import Manifest, ManifestList
from .names import DEFAULT_NAMES, LAB_LABEL, NOTES_IMAGE, NOTES_MCP_REQUIREMENT, Names
from .wait import attempt
from .wire import jsonrpc

__all__ = [
    "AUDIENCE",
    "DEFAULT_RULES",
    "FETCHER_TARGET",
    "ISSUER",
    "NOTES_SCRIPT",
    "NOTES_TARGET",
    "TOOLS_PATH",
    "CallOutcome",
    "RawAnswer",
    "SigningKey",
    "Token",
    "authorization_policy",
    "call_tool",
    "jwt_policy",
    "list_tools",
    "make_key",
    "notes_running",
    "notes_server",
    "notes_source",
    "raw_initialize",
    "remove_policies",
    "token",
    "tools_backend",
    "tools_route",
    "wait_until",
]

T = TypeVar("T")

FETCHER_TARGET = "fetcher"
NOTES_TARGET = "notes"
TOOLS_PATH = "/tools"
ISSUER = "https://issuer.agwlab.local"
AUDIENCE = "mcp-tools"
#: Everyone may read (list notes, fetch pages); only an editor may change notes.
DEFAULT_RULES: tuple[str, ...] = (
    'mcp.tool.name in ["list_notes", "fetch"]',
    'jwt.role == "editor"',
)


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(LAB_LABEL)}


# --- the objects ------------------------------------------------------------------------


NOTES_SCRIPT = "notes_server.py"
"""The notes server's source file: the ConfigMap key and the file name the container runs."""


def notes_source() -> str:
    """The notes server's source, read from this package (the file the sandbox runs too)."""
    return (resources.files("agwlab") / "sandbox" / "workloads" / NOTES_SCRIPT).read_text(encoding="utf-8")


def notes_server(names: Names = DEFAULT_NAMES) -> ManifestList:
    """The MCP notes server: its source in a ConfigMap, a Deployment and a Service.

    The Deployment runs the stock ``python`` image. Its container installs the pinned ``mcp`` SDK
    from PyPI, then runs the source mounted from the ConfigMap (Streamable HTTP at ``/mcp`` on port
    8000, Service port 80). It is ready once port 8000 accepts connections, which is after the
    install, so the Deployment is Available only when the server can answer.
    """
    labels = {"app": names.notes}
    text = notes_source()
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.notes, names.mcp_namespace),
        "data": {NOTES_SCRIPT: text},
    }
    start = (f"pip install --quiet --no-cache-dir --disable-pip-version-check --root-user-action=ignore "
             f"{NOTES_MCP_REQUIREMENT} && exec python /app/{NOTES_SCRIPT} --port 8000")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(names.notes, names.mcp_namespace),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": names.notes,
                        "image": NOTES_IMAGE,
                        "command": ["sh", "-c", start],
                        "ports": [{"name": "mcp", "containerPort": 8000}],
                        "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 2},
                        "volumeMounts": [{"name": "source", "mountPath": "/app", "readOnly": True}],
                    }],
                    "volumes": [{"name": "source", "configMap": {"name": names.notes}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names.notes, names.mcp_namespace),
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000, "protocol": "TCP"}]},
    }
    source = text.splitlines()
    head = source[:source.index('"""', 1) + 1] if '"""' in source[1:] else source[:20]
    shown = {**config, "data": {NOTES_SCRIPT: "\n".join([*head, f"# ... {len(source) - len(head)} more lines: "
                                                                   f"the whole file is applied"]) + "\n"}}
    return ManifestList([
        Manifest(config, f"The server's source, {NOTES_SCRIPT} from the agwlab package; only its docstring "
                         "is shown here.", shown=shown),
        Manifest(deployment, "The stock Python image: the container installs the mcp SDK from PyPI, then runs "
                             "the source from the ConfigMap."),
        Manifest(service),
    ])


def tools_backend(names: Names = DEFAULT_NAMES) -> Manifest:
    """The AgentgatewayBackend with two targets: the fetcher (SSE) and the notes server (Streamable HTTP)."""
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayBackend",
        "metadata": _meta(names.tools_backend, names.namespace),
        "spec": {"mcp": {"targets": [
            {"name": FETCHER_TARGET, "static": {"host": names.fetcher_host, "port": 80, "protocol": "SSE"}},
            {"name": NOTES_TARGET, "static": {"host": names.notes_host, "port": 80, "path": "/mcp",
                                              "protocol": "StreamableHTTP"}},
        ]}},
    }
    return Manifest(obj, "Two targets: the gateway answers initialize itself and names each tool "
                         "<target>_<tool>, so target names must not contain '_'.")


def tools_route(names: Names = DEFAULT_NAMES) -> Manifest:
    """The HTTPRoute ``/tools`` on the lab's Gateway to the two-target backend."""
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.tools_route, names.namespace),
        "spec": {
            "parentRefs": [{"name": names.gateway, "namespace": names.namespace}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": TOOLS_PATH}}],
                       "backendRefs": [{"name": names.tools_backend, "group": "agentgateway.dev",
                                        "kind": "AgentgatewayBackend"}]}],
        },
    }
    return Manifest(obj)


def notes_running(lab: Lab) -> tuple[bool, str]:
    """Whether a notes server Pod is Running and ready, and what its Pods say (for a check).

    While the container installs the mcp SDK the Pod is Running but not ready; a Pod that cannot
    reach PyPI restarts and the detail says ``CrashLoopBackOff``.
    """
    from . import kube

    names = lab.names
    pods = kube.list_objects(lab, "Pod", names.mcp_namespace, labels={"app": names.notes})
    states = []
    for pod in pods:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        waiting = [((c.get("state") or {}).get("waiting") or {}).get("reason") for c in status.get("containerStatuses") or []]
        if status.get("phase") == "Running" and ready:
            return True, f"{pod['metadata']['name']} Running"
        states.append(f"{pod['metadata']['name']} {status.get('phase', '?')} {' '.join(w for w in waiting if w)}".strip())
    return False, "; ".join(states) or f"no Pod labelled app={names.notes} in {names.mcp_namespace} yet"


def remove_policies(lab: Lab) -> list[str]:
    """Delete this notebook's JWT and authorization policies if a previous run left them, so the
    notebook can start again from step 1 (the ``/tools`` route is open again).

    Returns:
        The policies that were deleted.
    """
    from . import kube

    gone = []
    for name in (lab.names.tools_policy, lab.names.jwt_policy):
        if kube.get(lab, "AgentgatewayPolicy", name, lab.names.namespace, missing_ok=True) is not None:
            kube.delete(lab, "AgentgatewayPolicy", name, lab.names.namespace, quiet=True)
            gone.append(name)
    return gone


# --- keys and tokens --------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An EC P-256 signing key (ES256) and its key id. Shows only its ``kid``; the private half
    never leaves this object, :attr:`jwks` is the public half."""

    kid: str
    _private: Any

    @property
    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (what the gateway checks signatures with)."""
        from jwt.algorithms import ECAlgorithm

        public = json.loads(ECAlgorithm.to_jwk(self._private.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, ES256, private key not shown)"


def make_key(kid: str = "agwlab-key-1") -> SigningKey:
    """A new signing key (EC P-256, for ES256 tokens)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()))


@dataclass(frozen=True, repr=False)
class Token:
    """A signed JWT: :attr:`value` is the token; it shows as its ends and its claims."""

    value: str
    claims: dict[str, Any]

    @property
    def header(self) -> dict[str, str]:
        """The ``Authorization`` header carrying it."""
        return {"authorization": f"Bearer {self.value}"}

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.claims.items() if k in ("sub", "role", "iss", "aud")}
        return f"Token({self.value[:10]}…{self.value[-4:]}, {len(self.value)} chars, claims {shown})"

    __str__ = __repr__


def token(key: SigningKey, sub: str, *, role: str | None = None, expires_in: float = 3600,
          issuer: str = ISSUER, audience: str = AUDIENCE, **claims: Any) -> Token:
    """A token for caller ``sub``, signed with ``key``.

    Args:
        role: a custom ``role`` claim (rules can test ``jwt.role``).
        expires_in: seconds until ``exp`` (negative: already expired).
        claims: more claims to put in.
    """
    import jwt

    now = int(time.time())
    body: dict[str, Any] = {"iss": issuer, "sub": sub, "aud": audience, "iat": now, "exp": int(now + expires_in),
                            **({"role": role} if role else {}), **claims}
    value = jwt.encode(body, key._private, algorithm="ES256", headers={"kid": key.kid})
    return Token(value, body)


def jwt_policy(names: Names = DEFAULT_NAMES, key: SigningKey | None = None, *, mode: str = "Strict",
               issuer: str = ISSUER, audience: str = AUDIENCE) -> Manifest:
    """The AgentgatewayPolicy: a valid token from ``issuer`` is required on the ``/tools`` route.

    Args:
        key: whose public half goes in the JWKS (``inline``: nothing to fetch).
        mode: ``Strict`` (required), ``Optional`` (checked when sent) or ``Permissive``.
    """
    if key is None:
        raise ValueError("jwt_policy needs the signing key: key = mcpsec.make_key()")
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _meta(names.jwt_policy, names.namespace),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": names.tools_route}],
            "traffic": {"jwtAuthentication": {
                "mode": mode,
                "providers": [{"issuer": issuer, "audiences": [audience],
                               "jwks": {"inline": json.dumps(key.jwks, separators=(",", ":"))}}],
            }},
        },
    }
    return Manifest(obj, "Only the public key is in the policy; the private key stays in the notebook.")


def authorization_policy(names: Names = DEFAULT_NAMES, rules: Sequence[str] = DEFAULT_RULES) -> Manifest:
    """The AgentgatewayPolicy with ``backend.mcp.authorization``: a tool is allowed when any rule holds.

    Args:
        rules: CEL expressions over ``jwt.*`` (the token's claims) and ``mcp.tool.name`` /
            ``mcp.tool.target`` (the tool's own name, without the target prefix).
    """
    if not rules:
        raise ValueError("give at least one rule, e.g. 'jwt.sub == \"alice\"'")
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _meta(names.tools_policy, names.namespace),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": names.tools_route}],
            "backend": {"mcp": {"authorization": {"action": "Allow",
                                                  "policy": {"matchExpressions": list(rules)}}}},
        },
    }
    return Manifest(obj)


# --- clients ----------------------------------------------------------------------------


@dataclass
class RawAnswer:
    """What the gateway answered a plain HTTP ``initialize`` (the token's fate before any MCP)."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.headers.items() if k in ("content-type", "www-authenticate", "mcp-session-id")}
        return f"HTTP {self.status} {shown}\n{self.body[:300]}"


def raw_initialize(lab: Lab, tok: Token | str | None = None, *, timeout: float = 30) -> RawAnswer:
    """POST an MCP ``initialize`` to ``/tools`` with httpx, with ``tok`` (a :class:`Token`, a raw
    string sent as the bearer token, or nothing)."""
    headers = dict(jsonrpc.STREAMABLE_HTTP_HEADERS)
    if isinstance(tok, Token):
        headers.update(tok.header)
    elif tok:
        headers["authorization"] = f"Bearer {tok}"
    response = httpx.post(lab.gateway_url(TOOLS_PATH), json=jsonrpc.initialize(1, client_name="agwlab"),
                          headers=headers, timeout=timeout)
    return RawAnswer(response.status_code, response.text, dict(response.headers))


@dataclass
class CallOutcome:
    """One ``tools/call`` as the mcp SDK saw it: a result, or the ``MCPError`` it raised."""

    tool: str
    text: str = ""
    is_error: bool = False
    error_code: int | None = None
    error_message: str | None = None

    @property
    def refused(self) -> bool:
        """The SDK raised a JSON-RPC error (the gateway refused the call)."""
        return self.error_code is not None

    def __repr__(self) -> str:
        if self.refused:
            return f"{self.tool}: MCPError {self.error_code} {self.error_message!r}"
        return f"{self.tool}: {'tool error: ' if self.is_error else ''}{self.text}"


class _QuietDelete(logging.Filter):
    """Drops the SDK's ``Session termination failed: 202``: v1.4.1 answers a session's DELETE
    with 202 Accepted, which the SDK (expecting 200 or 204) logs as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Session termination failed: 202"


logging.getLogger("mcp.client.streamable_http").addFilter(_QuietDelete())


async def _with_session(lab: Lab, tok: Token | None, use: Callable[[Any], Awaitable[T]], timeout: float) -> T:
    """Open an MCP session on ``/tools`` with the SDK, sending ``tok``, and ``use`` it.

    Raises:
        LabError: the gateway refused an HTTP request of the session outright (e.g. 401 without a
            valid token), which the SDK only reports as a failed request.
    """
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    refusals: list[tuple[int, str]] = []

    async def note(response: httpx2.Response) -> None:
        if response.status_code in (401, 403):
            await response.aread()
            refusals.append((response.status_code, response.text.strip()))

    try:
        async with (
            httpx2.AsyncClient(headers=tok.header if tok else {}, timeout=timeout,
                               event_hooks={"response": [note]}) as client,
            streamable_http_client(lab.gateway_url(TOOLS_PATH), http_client=client) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            return await use(session)
    except Exception:
        if not refusals:
            raise
        status, text = refusals[-1]
        raise LabError(f"the gateway answered HTTP {status} before any MCP message: {text[:200]}; "
                       "send a valid token (mcpsec.token(key, ...))") from None


def list_tools(lab: Lab, tok: Token | None = None, *, timeout: float = 30) -> list[str]:
    """The tool names a caller sees on ``/tools`` (mcp SDK: initialize, then ``tools/list``)."""

    async def use(session: Any) -> list[str]:
        return [t.name for t in (await session.list_tools()).tools]

    return run_sync(lambda: _with_session(lab, tok, use, timeout))


def call_tool(lab: Lab, tok: Token | None, name: str, arguments: dict[str, Any] | None = None, *,
              timeout: float = 30) -> CallOutcome:
    """Call one tool through ``/tools`` with the mcp SDK; a refusal is returned, not raised."""
    from mcp.shared.exceptions import MCPError

    async def use(session: Any) -> CallOutcome:
        try:
            result = await session.call_tool(name, arguments or {})
        except MCPError as exc:
            return CallOutcome(name, error_code=exc.error.code, error_message=exc.error.message)
        text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "text", ""))
        return CallOutcome(name, text=text, is_error=bool(result.is_error))

    return run_sync(lambda: _with_session(lab, tok, use, timeout))


def wait_until(probe: Callable[[], T], ok: Callable[[T], bool], *, timeout: float = 30, interval: float = 0.5) -> T:
    """Call ``probe`` until ``ok`` holds for its answer or ``timeout`` seconds pass; the last answer.

    A policy is Accepted a moment before it reaches the proxy; this waits for the proxy.
    """
    return attempt(lambda: (lambda answer: (ok(answer), answer))(probe()), timeout=timeout, interval=interval)[1]
