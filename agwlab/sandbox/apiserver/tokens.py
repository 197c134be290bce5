"""ServiceAccount tokens: issued, checked and kept in Secrets as Kubernetes does it.

Two kinds of token, both JWTs signed RS256 with the sandbox's service-account key
(``pki/sa.key``, made on first use and kept, so tokens survive a restart):

* **TokenRequest** (``POST .../serviceaccounts/<name>/token``, what ``kubectl create token``
  sends): bound to the ServiceAccount's uid, with an expiry (default one hour, at least
  ten minutes).
* **Token Secrets** (type ``kubernetes.io/service-account-token`` annotated with
  ``kubernetes.io/service-account.name``): the token controller fills ``data.token``,
  ``data.ca.crt`` and ``data.namespace`` and the token lasts as long as the Secret.

Either stops working when its ServiceAccount (or Secret) is deleted. Deleting a
ServiceAccount deletes its token Secrets.

As kube-controller-manager's ServiceAccount controller does, every namespace gets a
ServiceAccount ``default`` (made again if it is deleted while the namespace lives).

Example:
    >>> tokens = ServiceAccountTokens(store, key_path, ca_file=ca)       # doctest: +SKIP
    >>> tokens.verify(token).name                                        # doctest: +SKIP
    'system:serviceaccount:agwlab-alice:attendee'
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..store import AlreadyExists, Invalid, NotFound, Store, StoreError
from .users import UserInfo, service_account_user

__all__ = ["DEFAULT_ACCOUNT", "ISSUER", "SA_TOKEN_TYPE", "ServiceAccountTokens"]

log = logging.getLogger(__name__)

ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
DEFAULT_ACCOUNT = "default"
"""The ServiceAccount every namespace gets."""
_SA_NAME = "kubernetes.io/service-account.name"
_SA_UID = "kubernetes.io/service-account.uid"
_LEGACY_ISSUER = "kubernetes/serviceaccount"
_DEFAULT_SECONDS = 3600
_MIN_SECONDS = 600


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.replace(tmp, path)
    return key


class ServiceAccountTokens:
    """Issues and verifies ServiceAccount tokens, and fills token Secrets.

    Args:
        store: the object store (ServiceAccounts and Secrets are read from it).
        key_path: the PEM private key that signs tokens (created when missing).
        ca_file: the API server's CA certificate (PEM), put into token Secrets as ``ca.crt``
            (read when a Secret is filled; left out while the file does not exist).
    """

    def __init__(self, store: Store, key_path: Path, *, ca_file: Path | None = None) -> None:
        self.store = store
        self._key = _load_key(key_path)
        self._public = self._key.public_key()
        self._ca_file = ca_file
        self._verified: dict[str, tuple[float, UserInfo, tuple]] = {}
        store.add_listener(self._on_change)
        for ns in store.list("", "namespaces", copy=False):
            self._ensure_default(ns["metadata"]["name"])

    # ------------------------------------------------------------------ issuing

    def request(self, namespace: str, name: str, body: Any) -> dict:
        """Answer a TokenRequest for ServiceAccount ``namespace/name``.

        Raises:
            NotFound: no such ServiceAccount.
            Invalid: an expiry under ten minutes.
        """
        sa = self.store.get("", "serviceaccounts", namespace, name)
        if sa is None:
            raise NotFound(f'serviceaccounts "{name}" not found', details={"name": name, "kind": "serviceaccounts"})
        spec = dict((body or {}).get("spec") or {}) if isinstance(body, dict) else {}
        seconds = spec.get("expirationSeconds") or _DEFAULT_SECONDS
        if not isinstance(seconds, int) or seconds < _MIN_SECONDS:
            raise Invalid.of(None, "TokenRequest.authentication.k8s.io", name, [{
                "reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                "message": f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"}])
        audiences = list(spec.get("audiences") or [ISSUER])
        now = int(time.time())
        claims = {"aud": audiences, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + seconds,
                  "sub": f"system:serviceaccount:{namespace}:{name}", "jti": str(uuid.uuid4()),
                  "kubernetes.io": {"namespace": namespace,
                                    "serviceaccount": {"name": name, "uid": sa["metadata"]["uid"]}}}
        token = jwt.encode(claims, self._key, algorithm="RS256")
        expires = _dt.datetime.fromtimestamp(now + seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec.update({"audiences": audiences, "expirationSeconds": seconds})
        spec.setdefault("boundObjectRef", None)
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "creationTimestamp": _dt.datetime.fromtimestamp(now, _dt.UTC).strftime(
                                 "%Y-%m-%dT%H:%M:%SZ")},
                "spec": spec, "status": {"token": token, "expirationTimestamp": expires}}

    def _secret_token(self, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        claims = {"iss": _LEGACY_ISSUER, "sub": f"system:serviceaccount:{namespace}:{sa_name}",
                  "kubernetes.io/serviceaccount/namespace": namespace,
                  "kubernetes.io/serviceaccount/secret.name": secret_name,
                  "kubernetes.io/serviceaccount/service-account.name": sa_name,
                  "kubernetes.io/serviceaccount/service-account.uid": sa_uid}
        return jwt.encode(claims, self._key, algorithm="RS256")

    # ------------------------------------------------------------------ checking

    def verify(self, token: str) -> UserInfo | None:
        """The user a token stands for, or ``None`` when it is not (or no longer) valid."""
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.time() and self._still_there(cached[2]):
            return cached[1]
        try:
            claims = jwt.decode(token, self._public, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return None
        if claims.get("iss") == _LEGACY_ISSUER:
            ns = claims.get("kubernetes.io/serviceaccount/namespace", "")
            name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
            uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
            secret = claims.get("kubernetes.io/serviceaccount/secret.name", "")
            holder = ("secret", ns, secret, token)
            until = float("inf")
        else:
            bound = claims.get("kubernetes.io") or {}
            ns = bound.get("namespace", "")
            name = (bound.get("serviceaccount") or {}).get("name", "")
            uid = (bound.get("serviceaccount") or {}).get("uid", "")
            holder = ("none", "", "", "")
            until = float(claims.get("exp", 0))
        check = ("sa", ns, name, uid, holder)
        if not self._still_there(check):
            return None
        user = service_account_user(ns, name, uid)
        if len(self._verified) > 4096:
            self._verified.clear()
        self._verified[token] = (until, user, check)
        return user

    def _still_there(self, check: tuple) -> bool:
        _, ns, name, uid, holder = check
        sa = self.store.get("", "serviceaccounts", ns, name, copy=False)
        if sa is None or sa["metadata"].get("uid") != uid:
            return False
        if holder[0] == "secret":
            secret = self.store.get("", "secrets", holder[1], holder[2], copy=False)
            if secret is None:
                return False
            given = base64.b64encode(holder[3].encode()).decode()
            return (secret.get("data") or {}).get("token") == given
        return True

    # ------------------------------------------------------------------ the token controller

    def _on_change(self, event: str, obj: dict) -> None:
        kind = obj.get("kind")
        if kind == "Secret" and event != "DELETED" and obj.get("type") == SA_TOKEN_TYPE:
            if not (obj.get("data") or {}).get("token"):
                self._later(self._fill, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        elif kind == "ServiceAccount" and event == "DELETED":
            self._later(self._drop_secrets, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if obj["metadata"]["name"] == DEFAULT_ACCOUNT:
                self._later(self._ensure_default, obj["metadata"].get("namespace", ""))
        elif kind == "Namespace" and event == "ADDED":
            self._later(self._ensure_default, obj["metadata"]["name"])
        elif kind == "ServiceAccount" and event == "ADDED":
            self._later(self._fill_waiting, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    @staticmethod
    def _later(fn: Any, *args: Any) -> None:
        # the store calls listeners inside a commit: act after it, as a controller would
        try:
            asyncio.get_running_loop().call_soon(fn, *args)
        except RuntimeError:
            fn(*args)

    def _fill(self, namespace: str, name: str) -> None:
        secret = self.store.get("", "secrets", namespace, name)
        if secret is None or secret.get("type") != SA_TOKEN_TYPE or (secret.get("data") or {}).get("token"):
            return
        annotations = secret["metadata"].setdefault("annotations", {})
        sa = self.store.get("", "serviceaccounts", namespace, annotations.get(_SA_NAME, ""))
        if sa is None:
            return  # Kubernetes leaves it empty until the ServiceAccount exists
        annotations[_SA_UID] = sa["metadata"]["uid"]
        token = self._secret_token(namespace, sa["metadata"]["name"], sa["metadata"]["uid"], name)
        data = secret.setdefault("data", {})
        data["token"] = base64.b64encode(token.encode()).decode()
        data["namespace"] = base64.b64encode(namespace.encode()).decode()
        if self._ca_file is not None and self._ca_file.exists():
            data["ca.crt"] = base64.b64encode(self._ca_file.read_bytes()).decode()
        try:
            self.store.update(secret, field_manager="kube-controller-manager")
        except Exception as exc:  # noqa: BLE001 - changed meanwhile: the next event fills it
            log.debug("token Secret %s/%s not filled yet: %s", namespace, name, exc)

    def _ensure_default(self, namespace: str) -> None:
        ns = self.store.get("", "namespaces", None, namespace, copy=False)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if self.store.get("", "serviceaccounts", namespace, DEFAULT_ACCOUNT, copy=False) is not None:
            return
        try:
            self.store.create({"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": DEFAULT_ACCOUNT, "namespace": namespace}},
                              field_manager="kube-controller-manager")
        except AlreadyExists:
            pass
        except StoreError as exc:  # the namespace went away meanwhile
            log.debug("no default ServiceAccount in %s: %s", namespace, exc)

    def _fill_waiting(self, namespace: str, sa_name: str) -> None:
        for secret in self._token_secrets(namespace, sa_name):
            self._fill(namespace, secret["metadata"]["name"])

    def _token_secrets(self, namespace: str, sa_name: str) -> list[dict]:
        return [s for s in self.store.list("", "secrets", namespace, copy=False)
                if s.get("type") == SA_TOKEN_TYPE
                and (s["metadata"].get("annotations") or {}).get(_SA_NAME) == sa_name]

    def _drop_secrets(self, namespace: str, sa_name: str) -> None:
        for secret in self._token_secrets(namespace, sa_name):
            with contextlib.suppress(NotFound):
                self.store.delete("", "secrets", namespace, secret["metadata"]["name"])
