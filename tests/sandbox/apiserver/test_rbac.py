"""ServiceAccounts, tokens and RBAC: the API server refuses what a user's roles do not allow.

Two ServiceAccounts, each allowed everything on a few kinds in its own namespace, use the
official client and real kubectl against the API server; every verb across namespaces
is refused with Kubernetes' 403.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from labtest import poll

RBAC = "rbac.authorization.k8s.io"
ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def _admin(apiserver) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(apiserver.kubeconfig))


def _attendee(apiserver, admin: client.ApiClient, name: str, *, role: bool = True) -> tuple[str, Path]:
    """Namespace ``ws-<name>`` with ServiceAccount ``attendee``, its token Secret and (optionally)
    a Role on configmaps, secrets and pods; returns the token and a kubeconfig for it."""
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    ns = f"ws-{name}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="attendee")))
    core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="attendee-token",
                                     annotations={"kubernetes.io/service-account.name": "attendee"}),
        type="kubernetes.io/service-account-token"))
    if role:
        rbac.create_namespaced_role(ns, client.V1Role(metadata=client.V1ObjectMeta(name="attendee"), rules=[
            client.V1PolicyRule(api_groups=[""], resources=["configmaps", "pods", "pods/log"], verbs=["*"])]))
        rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="attendee"),
            role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="attendee"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="attendee", namespace=ns)]))
    def filled() -> client.V1Secret | None:
        s = core.read_namespaced_secret("attendee-token", ns)
        return s if (s.data or {}).get("token") else None

    secret = poll(filled, what="the token controller to fill the Secret")
    assert base64.b64decode(secret.data["namespace"]).decode() == ns
    token = base64.b64decode(secret.data["token"]).decode()
    kc = yaml.safe_load(apiserver.kubeconfig.read_text())
    kc["users"][0]["user"]["token"] = token
    kc["contexts"][0]["context"]["namespace"] = ns
    path = apiserver.kubeconfig.parent / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    return token, path


def _status(exc: ApiException) -> dict:
    return json.loads(exc.body)


def _kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    proc = subprocess.run(["kubectl", *args], check=False, capture_output=True, text=True, env=env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc


def test_token_secret_authenticates_as_the_service_account(apiserver):
    admin = _admin(apiserver)
    _, kc = _attendee(apiserver, admin, "alice")
    me = client.AuthenticationV1Api(config.new_client_from_config(str(kc))).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert me.status.user_info.username == "system:serviceaccount:ws-alice:attendee"
    assert set(me.status.user_info.groups) == {"system:serviceaccounts", "system:serviceaccounts:ws-alice",
                                               "system:authenticated"}
    # the admin stays the admin
    me = client.AuthenticationV1Api(admin).create_self_subject_review(client.V1SelfSubjectReview())
    assert "system:masters" in me.status.user_info.groups


def test_every_verb_across_namespaces_is_refused_with_kubernetes_wording(apiserver):
    admin = _admin(apiserver)
    _, alice_kc = _attendee(apiserver, admin, "alice")
    _attendee(apiserver, admin, "bob")
    client.CoreV1Api(admin).create_namespaced_config_map("ws-bob", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="notes"), data={"a": "1"}))
    alice = client.CoreV1Api(config.new_client_from_config(str(alice_kc)))
    calls = {
        "get": lambda: alice.read_namespaced_config_map("notes", "ws-bob"),
        "list": lambda: alice.list_namespaced_config_map("ws-bob"),
        "watch": lambda: alice.list_namespaced_config_map("ws-bob", watch=True, timeout_seconds=1,
                                                          _preload_content=False),
        "create": lambda: alice.create_namespaced_config_map("ws-bob", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="mine"))),
        "update": lambda: alice.replace_namespaced_config_map("notes", "ws-bob", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="notes"), data={"a": "2"})),
        "patch": lambda: alice.patch_namespaced_config_map("notes", "ws-bob", {"data": {"a": "3"}}),
        "delete": lambda: alice.delete_namespaced_config_map("notes", "ws-bob"),
        "deletecollection": lambda: alice.delete_collection_namespaced_config_map("ws-bob"),
    }
    assert set(calls) == set(ALL_VERBS)
    user = "system:serviceaccount:ws-alice:attendee"
    for verb, call in calls.items():
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403, (verb, err.value.body)
        status = _status(err.value)
        assert status["reason"] == "Forbidden" and status["details"]["kind"] == "configmaps"
        named = '"notes" ' if verb in ("get", "update", "patch", "delete") else ""
        assert status["message"] == (f'configmaps {named}is forbidden: User "{user}" cannot {verb} resource '
                                     f'"configmaps" in API group "" in the namespace "ws-bob"'), status
    # nothing of bob's changed
    assert client.CoreV1Api(admin).read_namespaced_config_map("notes", "ws-bob").data == {"a": "1"}
    # alice's own namespace works for the kinds her Role names, and nothing else
    alice.create_namespaced_config_map("ws-alice", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="mine")))
    assert [c.metadata.name for c in alice.list_namespaced_config_map("ws-alice").items] == ["mine"]
    with pytest.raises(ApiException) as err:
        alice.read_namespaced_secret("attendee-token", "ws-alice")
    assert _status(err.value)["message"] == (
        f'secrets "attendee-token" is forbidden: User "{user}" cannot get resource "secrets" in API group "" '
        'in the namespace "ws-alice"')
    with pytest.raises(ApiException) as err:
        alice.list_namespace()
    assert err.value.status == 403 and "at the cluster scope" in _status(err.value)["message"]
    with pytest.raises(ApiException) as err:
        alice.list_config_map_for_all_namespaces()
    assert err.value.status == 403


def test_kubectl_as_an_attendee(apiserver):
    admin = _admin(apiserver)
    _, kc = _attendee(apiserver, admin, "alice")
    _attendee(apiserver, admin, "bob")
    assert _kubectl(kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == \
        "system:serviceaccount:ws-alice:attendee"
    assert _kubectl(kc, "auth", "can-i", "create", "configmaps").stdout.strip() == "yes"
    assert _kubectl(kc, "auth", "can-i", "get", "secrets", check=False).stdout.strip() == "no"
    assert _kubectl(kc, "auth", "can-i", "get", "configmaps", "-n", "ws-bob", check=False).stdout.strip() == "no"
    rules = _kubectl(kc, "auth", "can-i", "--list").stdout
    assert "configmaps" in rules and "secrets" not in rules
    assert "configmaps" in _kubectl(kc, "api-resources").stdout  # discovery is open to any authenticated user
    _kubectl(kc, "create", "configmap", "x", "--from-literal=a=b")
    proc = _kubectl(kc, "delete", "configmap", "x", "-n", "ws-bob", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        'Error from server (Forbidden): configmaps "x" is forbidden: User "system:serviceaccount:ws-alice:attendee" '
        'cannot delete resource "configmaps" in API group "" in the namespace "ws-bob"')
    proc = _kubectl(kc, "get", "secrets", "-A", check=False)
    assert proc.returncode == 1 and "cannot list resource \"secrets\" in API group \"\" at the cluster scope" in \
        proc.stderr


def test_bindings_take_effect_at_once_and_deleting_the_account_revokes_its_token(apiserver):
    admin = _admin(apiserver)
    _, kc = _attendee(apiserver, admin, "carol", role=False)
    carol = client.CoreV1Api(config.new_client_from_config(str(kc)))
    with pytest.raises(ApiException) as err:
        carol.list_namespaced_pod("ws-carol")
    assert err.value.status == 403
    _kubectl(apiserver.kubeconfig, "create", "clusterrole", "pod-reader", "--verb=get,list", "--resource=pods")
    _kubectl(apiserver.kubeconfig, "create", "rolebinding", "read-pods", "--clusterrole=pod-reader",
             "--serviceaccount=ws-carol:attendee", "-n", "ws-carol")
    assert carol.list_namespaced_pod("ws-carol").items == []
    with pytest.raises(ApiException):  # a RoleBinding grants in its own namespace only
        carol.list_namespaced_pod("default")
    client.CoreV1Api(admin).delete_namespaced_service_account("attendee", "ws-carol")
    poll(lambda: client.CoreV1Api(admin).list_namespaced_secret("ws-carol").items == [],
         what="the account's token Secret to go with it")
    with pytest.raises(ApiException) as err:
        carol.list_namespaced_pod("ws-carol")
    assert err.value.status == 401


def test_token_request(apiserver):
    admin = _admin(apiserver)
    _attendee(apiserver, admin, "dave")
    token = _kubectl(apiserver.kubeconfig, "create", "token", "attendee", "-n", "ws-dave", "--duration=15m").stdout
    assert token.count(".") == 2
    who = _kubectl(apiserver.kubeconfig, "--token", token.strip(), "auth", "whoami", "-o",
                   "jsonpath={.status.userInfo.username}").stdout
    assert who == "system:serviceaccount:ws-dave:attendee"
    proc = _kubectl(apiserver.kubeconfig, "create", "token", "attendee", "-n", "ws-dave", "--duration=1m",
                    check=False)
    assert proc.returncode == 1 and "may not specify a duration less than 10 minutes" in proc.stderr
    proc = _kubectl(apiserver.kubeconfig, "create", "token", "nobody", "-n", "ws-dave", check=False)
    assert 'serviceaccounts "nobody" not found' in proc.stderr
    bad = _kubectl(apiserver.kubeconfig, "--token", token.strip()[:-4] + "AAAA", "get", "pods", check=False)
    assert bad.returncode == 1 and "You must be logged in to the server" in bad.stderr


def test_rbac_objects_are_validated_and_shown_like_kubernetes(apiserver):
    admin = _admin(apiserver)
    _attendee(apiserver, admin, "erin")
    dyn = dynamic.DynamicClient(admin)
    bindings = dyn.resources.get(api_version=f"{RBAC}/v1", kind="RoleBinding")
    with pytest.raises(ApiException) as err:
        bindings.patch(name="attendee", namespace="ws-erin", content_type="application/merge-patch+json",
                       body={"roleRef": {"name": "other"}})
    assert err.value.status == 422 and "cannot change roleRef" in _status(err.value)["message"]
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(admin).create_namespaced_secret("ws-erin", client.V1Secret(
            metadata=client.V1ObjectMeta(name="t"), type="kubernetes.io/service-account-token"))
    assert err.value.status == 422 and \
        "metadata.annotations[kubernetes.io/service-account.name]: Required value" in _status(err.value)["message"]
    roles = dyn.resources.get(api_version=f"{RBAC}/v1", kind="Role")
    with pytest.raises(ApiException) as err:
        roles.create(namespace="ws-erin", body={"apiVersion": f"{RBAC}/v1", "kind": "Role",
                                                "metadata": {"name": "bad"}, "rules": [{"apiGroups": [""],
                                                                                        "resources": ["pods"]}]})
    assert err.value.status == 422
    wide = _kubectl(apiserver.kubeconfig, "get", "rolebinding", "-n", "ws-erin", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert wide[1].split()[1] == "Role/attendee" and wide[1].split()[-1] == "ws-erin/attendee"
    defaults = _kubectl(apiserver.kubeconfig, "get", "clusterroles", "-o", "name").stdout.split()
    assert {"clusterrole.rbac.authorization.k8s.io/cluster-admin",
            "clusterrole.rbac.authorization.k8s.io/system:discovery"} <= set(defaults)


def test_every_namespace_gets_a_default_service_account(apiserver):
    admin = _admin(apiserver)
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ws-fresh")))
    poll(lambda: core.read_namespaced_service_account("default", "ws-fresh"),
         what="the ServiceAccount controller to create default in a new namespace")
    assert core.read_namespaced_service_account("default", "default").metadata.name == "default"
    core.delete_namespaced_service_account("default", "ws-fresh")
    sa = poll(lambda: core.read_namespaced_service_account("default", "ws-fresh"),
              what="default to come back after it was deleted")
    assert sa.metadata.name == "default"


def test_nobody_grants_what_they_do_not_hold(apiserver):
    admin = _admin(apiserver)
    _, kc = _attendee(apiserver, admin, "frank")
    # frank may write Roles and RoleBindings in his namespace (not "*", which would include escalate
    # and bind), and holds configmaps and pods there (from _attendee)
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role("ws-frank", client.V1Role(metadata=client.V1ObjectMeta(name="rbac-admin"), rules=[
        client.V1PolicyRule(api_groups=[RBAC], resources=["roles", "rolebindings"],
                            verbs=["get", "list", "create", "update", "patch", "delete"])]))
    rbac.create_namespaced_role_binding("ws-frank", client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="rbac-admin"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="rbac-admin"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="attendee", namespace="ws-frank")]))
    frank = client.RbacAuthorizationV1Api(config.new_client_from_config(str(kc)))
    # what he holds he may pass on
    frank.create_namespaced_role("ws-frank", client.V1Role(metadata=client.V1ObjectMeta(name="cm"), rules=[
        client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])]))
    frank.create_namespaced_role_binding("ws-frank", client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="cm"), role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="cm"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="default", namespace="ws-frank")]))
    # secrets he does not hold: neither a Role with them nor a binding to cluster-admin
    with pytest.raises(ApiException) as err:
        frank.create_namespaced_role("ws-frank", client.V1Role(metadata=client.V1ObjectMeta(name="sec"), rules=[
            client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get"])]))
    status = _status(err.value)
    assert err.value.status == 403 and status["reason"] == "Forbidden"
    assert status["message"].startswith('roles.rbac.authorization.k8s.io "sec" is forbidden: user '
                                         '"system:serviceaccount:ws-frank:attendee"')
    assert 'attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], ' \
           'Verbs:["get"]}' in status["message"]
    proc = _kubectl(kc, "create", "rolebinding", "root", "--clusterrole=cluster-admin",
                    "--serviceaccount=ws-frank:attendee", "-n", "ws-frank", check=False)
    assert proc.returncode == 1 and "is attempting to grant RBAC permissions not currently held" in proc.stderr
    with pytest.raises(ApiException) as err:  # nor by widening a Role he already wrote
        frank.patch_namespaced_role("cm", "ws-frank", {"rules": [{"apiGroups": [""], "resources": ["*"],
                                                                  "verbs": ["*"]}]})
    assert err.value.status == 403
    # "bind" on a role lets him bind it without holding it, as in Kubernetes
    rbac.create_namespaced_role("ws-frank", client.V1Role(metadata=client.V1ObjectMeta(name="binder"), rules=[
        client.V1PolicyRule(api_groups=[RBAC], resources=["clusterroles"], verbs=["bind"],
                            resource_names=["view-secrets"])]))
    rbac.create_namespaced_role_binding("ws-frank", client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="binder"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="binder"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="attendee", namespace="ws-frank")]))
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name="view-secrets"), rules=[
        client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get"])]))
    frank.create_namespaced_role_binding("ws-frank", client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="view-secrets"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="view-secrets"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="default", namespace="ws-frank")]))
