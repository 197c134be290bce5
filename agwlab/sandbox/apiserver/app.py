"""The ASGI app: Kubernetes REST semantics over the :class:`~agwlab.sandbox.store.Store`.

Example:
    >>> app = create_app(store, token="t0k3n", paths=SandboxPaths(Path("/tmp/s")))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.64.0.1", port=6443)                                # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from ..kinds import KindInfo, by_resource
from ..paths import SandboxPaths
from ..schemas import keys_for, list_key_defaults
from ..store import BadRequest, Conflict, Invalid, NotFound, Store, StoreError, match_fields, match_labels
from . import discovery, protobuf
from .crds import install_crds
from .escalation import check_no_escalation
from .patch import json_patch, merge_patch, strategic_merge_patch
from .portforward import portforward_endpoint
from .rbac import Attributes, Authorizer, install_rbac_defaults, request_verb
from .reviews import self_review
from .service_proxy import proxy_to_service
from .tables import to_table
from .tokens import ServiceAccountTokens
from .users import ADMIN, UserInfo
from .validation import admit, check_unknown
from .watch import TooOld, WatchHub

__all__ = ["MAX_DEPTH", "MAX_REQUEST_BYTES", "create_app"]

log = logging.getLogger(__name__)

_OPEN_PATHS = {"/livez", "/readyz", "/healthz", "/version"}
_JSON = "application/json"
_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_BOOKMARK_EVERY = 10.0


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


class _Http(Exception):
    """An error response that is not a store error (401, 405, 415…)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.body = _status(code, reason, message)
        self.code = code


def _json(body: Any, code: int = 200, *, media_type: str = _JSON, warnings: list[str] | None = None) -> Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join('299 - "{}"'.format(w.replace('"', '\\"')) for w in warnings)
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=code, media_type=media_type,
                    headers=headers)


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


def _field_manager(request: Request) -> str:
    """``?fieldManager=``, else the first word of the User-Agent, as Kubernetes does."""
    manager = request.query_params.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("user-agent", "unknown")
    return agent.split("/", 1)[0].split(" ", 1)[0] or "unknown"


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_REQUEST_BYTES = 3 * 1024 * 1024
"""The largest request body the server reads (the real API server's ``MaxRequestBodyBytes``)."""
MAX_DEPTH = 100
"""How deeply objects and lists may nest in a body (Kubernetes' own kinds nest ~40 deep at most)."""
_ALIAS_RATIO = 10
_ALIAS_CHECK_AFTER = 10_000


async def _read_body(request: Request) -> bytes:
    """The request body, refusing (413) past :data:`MAX_REQUEST_BYTES` without reading it all."""
    too_large = _Http(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BYTES}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_shape(doc: Any, kind: str) -> Any:
    """Refuse a document nested deeper than :data:`MAX_DEPTH`, or (YAML) one whose aliases
    expand it many times over (an "alias bomb"); returns ``doc``.

    The walk is iterative and stops early, so a hostile document costs little.
    """
    stack: list[tuple[Any, int]] = [(doc, 1)]
    visits, distinct = 0, set()
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise BadRequest(f"couldn't get version/kind; {kind} parse error: exceeded max depth "
                             f"(objects and lists may nest at most {MAX_DEPTH} deep)")
        visits += 1
        distinct.add(id(node))
        if visits > _ALIAS_CHECK_AFTER and visits > _ALIAS_RATIO * len(distinct):
            raise BadRequest("yaml: document contains excessive aliasing")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return doc


async def _body(request: Request, *, yaml_ok: bool = False) -> Any:
    raw = await _read_body(request)
    ctype = request.headers.get("content-type", _JSON).split(";")[0].strip()
    if ctype == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    if not raw.strip():
        raise BadRequest("the body of the request was empty")
    kind = "yaml" if ctype.endswith("yaml") else "json"
    try:
        if ctype.endswith("yaml") or yaml_ok:
            # clients send apply patches as JSON (valid YAML) almost always: parse that fast
            if raw.lstrip()[:1] in (b"{", b"["):
                try:
                    return _check_shape(json.loads(raw), "json")
                except ValueError:
                    pass
            return _check_shape(yaml.load(raw, Loader=_YAML_LOADER), "yaml")  # noqa: S506 - a safe loader
        return _check_shape(json.loads(raw), "json")
    except RecursionError:
        raise BadRequest(f"couldn't get version/kind; {kind} parse error: exceeded max depth (objects and "
                         f"lists may nest at most {MAX_DEPTH} deep)") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequest(f"couldn't get version/kind; {kind} parse error: {str(exc).splitlines()[0]}") from None


_FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")
_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}
# the namespaces the NamespaceLifecycle admission plugin never lets go
_IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


def _field_validation(request: Request) -> str:
    """``?fieldValidation=``, refusing a value the real server refuses.

    Absent, it is ``Warn`` (unknown fields pruned, with a warning), the API server's default since
    Kubernetes 1.23; kubectl sends ``Strict`` itself.
    """
    value = request.query_params.get("fieldValidation", "")
    if value not in _FIELD_VALIDATION:
        options = _OPTIONS_KIND.get(request.method, "CreateOptions")
        supported = ", ".join(json.dumps(v) for v in _FIELD_VALIDATION)
        raise Invalid(f'{options}.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
                      f'{json.dumps(value)}: supported values: {supported}',
                      details={"group": "meta.k8s.io", "kind": options,
                               "causes": [{"reason": "FieldValueNotSupported", "field": "fieldValidation",
                                           "message": f"Unsupported value: {json.dumps(value)}: supported "
                                                      f"values: {supported}"}]})
    return value or "Warn"


def _scale_of(obj: dict) -> dict:
    meta = obj["metadata"]
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items()))}}


class _Server:
    def __init__(self, store: Store, token: str, paths: SandboxPaths, version: str) -> None:
        self.store = store
        self.token = token
        self.paths = paths
        self.version = version
        self.hub = WatchHub(store)
        self.tokens = ServiceAccountTokens(store, paths.root / "pki" / "sa.key",
                                           ca_file=paths.root / "pki" / "ca.crt")
        self.rbac = Authorizer(store)

    # ------------------------------------------------------------------ entry

    async def handle(self, request: Request) -> Response:
        # ``/version/`` (the Python client's VersionApi) and ``/api/`` answer as without the slash.
        path = request.url.path.rstrip("/") or "/"
        try:
            if path not in _OPEN_PATHS:
                request.state.user = self._authenticate(request)
            return await self._route(request, path)
        except StoreError as exc:
            return _json(exc.status(), exc.code)
        except _Http as exc:
            return _json(exc.body, exc.code)
        except Exception as exc:  # keep the server up; say what went wrong
            log.exception("API request %s %s failed", request.method, path)
            return _json(_status(500, "InternalError", f"an error on the server ({type(exc).__name__}: {exc}) "
                                                       "has prevented the request from succeeding"), 500)

    def _authenticate(self, request: Request) -> UserInfo:
        """The admin (the sandbox's own token) or a ServiceAccount (its token); else 401."""
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer":
            given = given.strip()
            if hmac.compare_digest(given.encode(), self.token.encode()):
                return ADMIN
            user = self.tokens.verify(given)
            if user is not None:
                return user
        raise _Http(401, "Unauthorized", "Unauthorized")

    def admit_connection(self, conn: Any, verb: str, resource: str, subresource: str) -> None:
        """Authenticate and authorize a service-proxy or port-forward connection.

        Raises:
            _Http: 401 or 403, with the Status to send.
        """
        conn.state.user = self._authenticate(conn)
        p = conn.path_params
        try:
            self._authorize(conn, verb=verb, namespace=p["namespace"], resource=resource, subresource=subresource,
                            name=p.get("name") or p.get("service") or "")
        except StoreError as exc:
            err = _Http(exc.code, exc.reason, exc.message)
            err.body = exc.status()
            raise err from None

    def _no_escalation(self, request: Request, obj: dict) -> None:
        """A Role or binding may grant only what its writer holds (or may ``escalate``/``bind``)."""
        check_no_escalation(self.rbac, getattr(request.state, "user", ADMIN), obj)

    def _authorize(self, request: Request, **attrs: str) -> None:
        """Refuse with Kubernetes' 403 unless RBAC allows the request's user this."""
        user = getattr(request.state, "user", ADMIN)
        self.rbac.check(Attributes(user, **attrs))

    async def _route(self, request: Request, path: str) -> Response:
        if path in ("/livez", "/readyz", "/healthz"):
            return Response(b"ok", media_type="text/plain")
        if path == "/version":
            return _json(self._version())
        parts = [p for p in path.split("/") if p]
        accept = request.headers.get("accept", "")
        if not (parts and parts[0] in ("api", "apis") and len(parts) > 2 + (parts[0] == "apis")):
            self._authorize(request, verb=request.method.lower().replace("head", "get"), path=path)
        if parts == ["api"]:
            if "as=APIGroupDiscoveryList" in accept:
                return _json(discovery.aggregated_discovery(core=True), media_type=_AGGREGATED)
            return _json(discovery.api_versions())
        if parts == ["apis"]:
            if "as=APIGroupDiscoveryList" in accept:
                return _json(discovery.aggregated_discovery(core=False), media_type=_AGGREGATED)
            return _json(discovery.api_group_list())
        if parts and parts[0] == "openapi":
            return self._openapi(parts)
        if request.method == "POST" and parts in (
                ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"],
                ["apis", "authorization.k8s.io", "v1", "selfsubjectrulesreviews"],
                ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]):
            return await self._self_review(request, parts[1], parts[3])
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis":
            if len(parts) == 2:
                for g in discovery.api_group_list()["groups"]:
                    if g["name"] == parts[1]:
                        return _json({"kind": "APIGroup", "apiVersion": "v1", **g})
                raise NotFound("the server could not find the requested resource")
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NotFound("the server could not find the requested resource")
        if not rest:
            listing = discovery.api_resource_list(group, version)
            if listing is None:
                raise NotFound("the server could not find the requested resource")
            return _json(listing)
        return await self._resource(request, group, version, rest)

    async def _self_review(self, request: Request, group: str, kind: str) -> Response:
        """``kubectl auth can-i [--list]`` and ``kubectl auth whoami``."""
        return _json(self_review(self.rbac, request.state.user, group, await _body(request), kind), 201)

    def _version(self) -> dict:
        core = self.version.lstrip("v").split("-")[0].split(".")
        return {"major": core[0], "minor": core[1] if len(core) > 1 else "0", "gitVersion": self.version,
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
                "platform": "linux/amd64"}

    def _openapi(self, parts: list[str]) -> Response:
        if parts == ["openapi", "v2"]:
            # Only consulted by kubectl for kinds the v3 documents lack; an empty document
            # lets it go on to report "no matches for kind" as it does against a real server.
            return Response(discovery.openapi_v2_empty_protobuf(self.version),
                            media_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if parts == ["openapi", "v3"]:
            return _json(discovery.openapi_v3_index(self.version))
        if len(parts) >= 4 and parts[1] == "v3":
            if parts[2] == "api" and len(parts) == 4:
                doc = discovery.openapi_v3_document("", parts[3], self.version)
            elif parts[2] == "apis" and len(parts) == 5:
                doc = discovery.openapi_v3_document(parts[3], parts[4], self.version)
            else:
                doc = None
            if doc is not None:
                return Response(doc, media_type=_JSON, headers={"Cache-Control": "public, immutable"})
        raise NotFound("the server could not find the requested resource")

    # ------------------------------------------------------------------ resources

    async def _resource(self, request: Request, group: str, version: str, rest: list[str]) -> Response:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
        self._authorize(request, verb=request_verb(request.method, name, request.query_params.get("watch")),
                        namespace=namespace or (rest[1] if plural == "namespaces" and len(rest) > 1 else ""),
                        group=group, resource=plural, subresource=sub or "", name=name or "")
        if len(rest) > 3:
            raise NotFound("the server could not find the requested resource")
        info = by_resource(group, plural)
        if info is None or info.version != version:
            raise NotFound("the server could not find the requested resource")
        if not info.namespaced and namespace is not None:
            raise NotFound("the server could not find the requested resource")
        if sub is not None and sub not in info.subresources:
            raise NotFound("the server could not find the requested resource")
        if sub in ("portforward", "proxy"):
            # the WebSocket and proxy routes serve these; a plain request here cannot be upgraded
            raise _Http(400, "BadRequest", "Upgrade request required")
        method = request.method
        if name is None and info.namespaced and namespace is None and method in ("POST", "DELETE"):
            # across namespaces a namespaced kind can only be listed and watched
            raise _Http(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if name is None:
            if method == "GET":
                if request.query_params.get("watch") in ("1", "true"):
                    return self._watch(request, info, namespace)
                return self._list(request, info, namespace)
            if method == "POST":
                return await self._create(request, info, namespace)
            if method == "DELETE":
                return self._delete_collection(request, info, namespace)
        else:
            if info.namespaced and namespace is None:
                raise NotFound("the server could not find the requested resource")
            if method == "GET":
                if sub == "log":
                    return await self._log(request, info, namespace or "", name)
                return self._get(request, info, namespace, name, sub)
            if method == "PUT":
                return await self._replace(request, info, namespace, name, sub)
            if method == "PATCH":
                return await self._patch(request, info, namespace, name, sub)
            if method == "DELETE" and sub is None:
                return self._delete(request, info, namespace, name)
            if method == "POST" and sub == "token":
                return _json(self.tokens.request(namespace or "", name, await _body(request)), 201)
        raise _Http(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _fetch(self, info: KindInfo, namespace: str | None, name: str) -> dict:
        obj = self.store.get(info.group, info.plural, namespace, name)
        if obj is None:
            raise NotFound.of(info, name)
        return obj

    def _get(self, request: Request, info: KindInfo, namespace: str | None, name: str, sub: str | None) -> Response:
        obj = self._fetch(info, namespace, name)
        if sub == "scale":
            return _json(_scale_of(obj))
        if _wants_table(request) and sub is None:
            return _json(to_table(info, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                                  include_object=request.query_params.get("includeObject", "Metadata")))
        return _json(obj)

    def _list(self, request: Request, info: KindInfo, namespace: str | None) -> Response:
        q = request.query_params
        items = self.store.list(info.group, info.plural, namespace, label_selector=q.get("labelSelector"),
                                field_selector=q.get("fieldSelector"))
        rv = str(self.store.resource_version)
        if _wants_table(request):
            return _json(to_table(info, items, resource_version=rv,
                                  include_object=q.get("includeObject", "Metadata")))
        return _json({"kind": info.list_kind, "apiVersion": info.api_version,
                      "metadata": {"resourceVersion": rv}, "items": items})

    def _check_target(self, obj: Any, info: KindInfo, namespace: str | None, name: str | None) -> dict:
        if not isinstance(obj, dict):
            raise BadRequest(f"the body of the request was in an unknown format - expected a {info.kind} object")
        if not info.custom:  # built-in endpoints take the kind from the URL, as the real server does
            obj.setdefault("apiVersion", info.api_version)
            obj.setdefault("kind", info.kind)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not kind:
            raise BadRequest("Object 'Kind' is missing in the request body")
        if api_version != info.api_version or kind != info.kind:
            raise BadRequest(f"the API version in the data ({api_version}) does not match the expected API "
                             f"version ({info.api_version})" if kind == info.kind else
                             f"the kind in the data ({kind}) does not match the expected kind ({info.kind}) "
                             f"of the resource {info.resource}")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("json: cannot unmarshal metadata: expected an object")
        if info.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise BadRequest("the namespace of the provided object does not match the namespace sent on "
                                 "the request")
            if namespace:
                meta["namespace"] = namespace
            elif not meta.get("namespace"):
                meta["namespace"] = "default"
        if name is not None and meta.get("name") and meta["name"] != name:
            raise BadRequest(f"the name of the object ({meta['name']}) does not match the name on the URL "
                             f"({name})")
        if name is not None and not meta.get("name"):
            meta["name"] = name
        return obj

    def _dry_run(self, request: Request) -> bool:
        return "All" in request.query_params.getlist("dryRun")

    async def _create(self, request: Request, info: KindInfo, namespace: str | None) -> Response:
        _field_validation(request)
        obj = self._check_target(await _body(request), info, namespace, None)
        if "status" in info.subresources and info.kind != "Namespace":
            obj.pop("status", None)  # status is written through its subresource, as on a real server
        warnings = admit(obj, field_validation=_field_validation(request), info=info)
        self._no_escalation(request, obj)
        if self._dry_run(request):
            ns = obj["metadata"].get("namespace")
            if info.namespaced and self.store.get("", "namespaces", None, ns or "") is None:
                raise NotFound(f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"})
            return _json(obj, 201, warnings=warnings)
        created = self.store.create(obj, field_manager=_field_manager(request))
        return _json(created, 201, warnings=warnings)

    async def _replace(self, request: Request, info: KindInfo, namespace: str | None, name: str,
                       sub: str | None) -> Response:
        fv = _field_validation(request)
        body = await _body(request)
        if sub == "scale":
            return self._set_scale(request, info, namespace, name, body)
        obj = self._check_target(body, info, namespace, name)
        current = self._fetch(info, namespace, name)
        _check_fresh(info, obj, current)
        warnings = admit(obj, field_validation=fv, info=info, subresource=sub, old=current)
        self._no_escalation(request, obj)
        if self._dry_run(request):
            return _json(obj, warnings=warnings)
        return _json(self.store.update(obj, subresource=sub, field_manager=_field_manager(request)),
                     warnings=warnings)

    def _set_scale(self, request: Request, info: KindInfo, namespace: str | None, name: str, scale: Any) -> Response:
        obj = self._fetch(info, namespace, name)
        replicas = ((scale or {}).get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid_scale(name, replicas)
        rv = ((scale.get("metadata") or {}).get("resourceVersion"))
        obj.setdefault("spec", {})["replicas"] = replicas
        if rv:
            obj["metadata"]["resourceVersion"] = rv
        updated = self.store.update(obj, field_manager=_field_manager(request))
        return _json(_scale_of(updated))

    async def _patch(self, request: Request, info: KindInfo, namespace: str | None, name: str,
                     sub: str | None) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        fv = _field_validation(request)
        manager = _field_manager(request)
        if ctype == "application/apply-patch+yaml":
            if not request.query_params.get("fieldManager"):
                raise BadRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is "
                                 "required for apply patch")
            cfg = self._check_target(await _body(request, yaml_ok=True), info, namespace, name)
            warnings = check_unknown(cfg, info, fv)
            force = (request.query_params.get("force") or "").lower() in ("true", "1")
            if self._dry_run(request):
                return _json(cfg, warnings=warnings)
            current = self.store.get(info.group, info.plural, cfg["metadata"].get("namespace"),
                                     cfg["metadata"].get("name") or "")
            def prepare(merged: dict) -> None:
                admit(merged, field_validation="Ignore", info=info, subresource=sub, old=current)
                self._no_escalation(request, merged)

            result = self.store.apply(cfg, field_manager=manager, force=force, subresource=sub, prepare=prepare)
            return _json(result, warnings=warnings)
        if ctype not in ("application/merge-patch+json", "application/json-patch+json",
                         "application/strategic-merge-patch+json") or \
                (ctype == "application/strategic-merge-patch+json" and info.custom):
            accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            if not info.custom:
                accepted += ", application/strategic-merge-patch+json"
            raise _Http(415, "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: "
                        f"{accepted}")
        patch = await _body(request)
        current = self._fetch(info, namespace, name)
        if sub == "scale":
            scale = _scale_of(current)
            patched_scale = (json_patch(scale, patch) if ctype == "application/json-patch+json"
                             else merge_patch(scale, patch))
            return self._set_scale(request, info, namespace, name, patched_scale)
        if ctype == "application/json-patch+json":
            patched = json_patch(current, patch)
        elif ctype == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise BadRequest("the body of the request was in an unknown format: a merge patch must be an object")
            patched = merge_patch(current, patch)
        else:
            if not isinstance(patch, dict):
                raise BadRequest("the body of the request was in an unknown format: a strategic merge patch must "
                                 "be an object")
            patched = strategic_merge_patch(current, patch, keys_for(info.group, info.plural),
                                            key_defaults=list_key_defaults(info.group, info.plural))
        if not isinstance(patched, dict):
            raise BadRequest("the patch did not produce an object")
        patched = self._check_target(patched, info, namespace, name)
        _check_fresh(info, patched, current)
        warnings = admit(patched, field_validation=fv, info=info, subresource=sub, old=current)
        self._no_escalation(request, patched)
        if self._dry_run(request):
            return _json(patched, warnings=warnings)
        return _json(self.store.update(patched, subresource=sub, field_manager=manager), warnings=warnings)

    def _delete(self, request: Request, info: KindInfo, namespace: str | None, name: str) -> Response:
        if info.kind == "Namespace" and not info.group and name in _IMMORTAL_NAMESPACES:
            self._fetch(info, namespace, name)
            raise _Http(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        if self._dry_run(request):
            return _json(self._fetch(info, namespace, name))
        obj = self.store.delete(info.group, info.plural, namespace, name)
        return _json(obj)

    def _delete_collection(self, request: Request, info: KindInfo, namespace: str | None) -> Response:
        q = request.query_params
        items = self.store.list(info.group, info.plural, namespace, label_selector=q.get("labelSelector"),
                                field_selector=q.get("fieldSelector"))
        deleted = []
        if not self._dry_run(request):
            for o in items:
                meta = o["metadata"]
                if info.kind == "Namespace" and not info.group and meta["name"] in _IMMORTAL_NAMESPACES:
                    continue
                with contextlib.suppress(NotFound):
                    deleted.append(self.store.delete(info.group, info.plural, meta.get("namespace"), meta["name"]))
        return _json({"kind": info.list_kind, "apiVersion": info.api_version,
                      "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted})

    # ------------------------------------------------------------------ watch

    def _watch(self, request: Request, info: KindInfo, namespace: str | None) -> Response:
        q = request.query_params
        label_sel, field_sel = q.get("labelSelector"), q.get("fieldSelector")
        match_labels({}, label_sel)  # raise BadRequest for a bad selector now, not mid-stream
        match_fields({}, field_sel)

        def accept(o: dict) -> bool:
            return match_labels((o.get("metadata") or {}).get("labels") or {}, label_sel) and \
                match_fields(o, field_sel)

        rv_param = q.get("resourceVersion") or ""
        since = int(rv_param) if rv_param.isdigit() and rv_param != "0" else None
        send_initial = q.get("sendInitialEvents") == "true"
        bookmarks = q.get("allowWatchBookmarks") == "true"
        table = _wants_table(request)
        include = q.get("includeObject", "Metadata")
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise BadRequest("timeoutSeconds must be a number") from None
        if send_initial:
            since = None
        try:
            watch, replay = self.hub.open(info.group, info.plural, namespace, accept, since)
        except TooOld:
            line = {"type": "ERROR", "object": _status(
                410, "Expired", f"too old resource version: {rv_param} ({self.store.resource_version})")}
            return Response((json.dumps(line) + "\n").encode(), media_type=_JSON)
        initial = [] if since is not None else self.store.list(info.group, info.plural, namespace,
                                                              label_selector=label_sel, field_selector=field_sel)
        hub, store = self.hub, self.store

        def encode(kind: str, obj: dict) -> bytes:
            if table and kind != "BOOKMARK":
                obj = to_table(info, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                               include_object=include)
            return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()

        def bookmark(initial_end: bool = False) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return encode("BOOKMARK", {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta})

        async def stream() -> AsyncIterator[bytes]:
            matched: set[tuple[str, ...]] = set()
            try:
                for obj in initial:
                    key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    matched.update((key, ("seen", *key)))
                    yield encode("ADDED", obj)
                if send_initial and bookmarks:
                    yield bookmark(initial_end=True)
                for ev in replay:
                    out = self._filter(ev.type, ev.obj, accept, matched)
                    if out:
                        yield encode(out, ev.obj)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    try:
                        ev = await asyncio.wait_for(watch.queue.get(), timeout=min(remaining, _BOOKMARK_EVERY))
                    except TimeoutError:
                        if bookmarks and deadline - loop.time() > 0:
                            yield bookmark()
                        continue
                    out = self._filter(ev.type, ev.obj, accept, matched)
                    if out:
                        yield encode(out, ev.obj)
            finally:
                hub.close_watch(watch)

        return StreamingResponse(stream(), media_type=_JSON)

    @staticmethod
    def _filter(kind: str, obj: dict, accept, matched: set) -> str | None:
        """The event type this watch sends (objects entering/leaving a selector are ADDED/DELETED)."""
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        seen_key = ("seen", *key)
        first = seen_key not in matched
        matched.add(seen_key)
        now = accept(obj)
        was = key in matched
        if kind == "DELETED":
            matched.discard(key)
            return "DELETED" if (now or was) else None
        if now:
            matched.add(key)
            if first:  # a resumed watch has not seen this object yet: trust the event
                return kind
            return "MODIFIED" if was else "ADDED"
        if was:
            matched.discard(key)
            return "DELETED"
        return None

    # ------------------------------------------------------------------ logs

    async def _log(self, request: Request, info: KindInfo, namespace: str, name: str) -> Response:
        self._fetch(info, namespace, name)
        q = request.query_params
        path = self.paths.pod_log(namespace, name)

        def int_param(key: str) -> int | None:
            value = q.get(key)
            if value is None or value == "":
                return None
            try:
                return int(value)
            except ValueError:
                raise BadRequest(f"{key} must be an integer") from None

        tail, limit, since = int_param("tailLines"), int_param("limitBytes"), int_param("sinceSeconds")
        stamps = q.get("timestamps") in ("true", "1")
        follow = q.get("follow") in ("true", "1")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if since is not None and data:
            try:
                if path.stat().st_mtime < _dt.datetime.now().timestamp() - since:
                    data = b""
            except FileNotFoundError:
                data = b""
        offset = len(data)
        lines = data.splitlines(keepends=True)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []

        def stamp(chunk: bytes) -> bytes:
            if not stamps:
                return chunk
            now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            return b"".join(now + b" " + ln for ln in chunk.splitlines(keepends=True))

        first = stamp(b"".join(lines))
        if limit is not None:
            first = first[:limit]
        if not follow:
            return Response(first, media_type="text/plain")
        store = self.store

        async def stream() -> AsyncIterator[bytes]:
            sent = len(first)
            if first:
                yield first
            pos = offset
            pending = b""
            while store.get(info.group, info.plural, namespace, name) is not None:
                if limit is not None and sent >= limit:
                    return
                try:
                    size = os.path.getsize(path)
                except OSError:
                    size = 0
                if size < pos:
                    pos = 0  # the log was rotated or recreated: start over
                if size > pos:
                    chunk = await asyncio.to_thread(_read_range, path, pos, size - pos)
                    pos += len(chunk)
                    pending += chunk
                    complete, _, pending = pending.rpartition(b"\n")
                    if complete:
                        out = stamp(complete + b"\n")
                        if limit is not None:
                            out = out[: limit - sent]
                        sent += len(out)
                        yield out
                        continue
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/plain")


def _check_fresh(info: KindInfo, obj: dict, current: dict) -> None:
    """A stale ``resourceVersion`` is a conflict before anything is validated, as on a real server."""
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if rv not in (None, "") and str(rv) != current["metadata"].get("resourceVersion"):
        raise Conflict.stale(info, current["metadata"]["name"])


def _read_range(path: os.PathLike, start: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


def _invalid_scale(name: str, replicas: Any) -> StoreError:
    return Invalid.of(None, "Scale.autoscaling", name,
                      [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                        "message": f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0"}])


def create_app(store: Store, *, token: str, paths: SandboxPaths, version: str = "v1.32.4-agwlab") -> Starlette:
    """Build the API server's ASGI app.

    Args:
        store: where objects live (shared with the controller on the same event loop).
        token: the bearer token every request but ``/livez``, ``/readyz``, ``/healthz`` and
            ``/version`` must carry.
        paths: the sandbox's files (Pod logs are read from ``paths.pod_log``).
        version: what ``/version`` reports; kubectl's dispatcher picks its kubectl by it.
    """
    install_crds(store)
    install_rbac_defaults(store)
    server = _Server(store, token, paths, version)
    # Build the OpenAPI index now, not on kubectl's first call. CEL rules are compiled per
    # kind on first use (validation.compile_rules): compiling all ~950 up front costs ~18 MB.
    discovery.openapi_v3_index(version)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

    async def service_proxy(request: Request) -> Response:
        try:
            server.admit_connection(request, request_verb(request.method, "x"), "services", "proxy")
        except _Http as exc:
            return _json(exc.body, exc.code)
        p = request.path_params
        return await proxy_to_service(request, store, p["namespace"], p["service"], p.get("rest", ""))

    app = Starlette(routes=[
        WebSocketRoute("/api/v1/namespaces/{namespace}/pods/{name}/portforward",
                       portforward_endpoint(store, lambda ws: server.admit_connection(
                           ws, "create", "pods", "portforward"))),
        Route("/api/v1/namespaces/{namespace}/services/{service}/proxy", service_proxy, methods=methods),
        Route("/api/v1/namespaces/{namespace}/services/{service}/proxy/{rest:path}", service_proxy,
              methods=methods),
        Route("/{path:path}", server.handle, methods=methods)])
    app.state.api = server
    return app
