"""Regenerate the schema data in this directory.

Built-in kinds: structural OpenAPI v3 schemas derived from the official ``kubernetes``
client's model classes (field names from ``attribute_map``, types from ``openapi_types``,
required-ness and descriptions from the pydantic fields), plus the list merge keys and
int-or-string fields the Kubernetes API declares. Custom kinds: the ``openAPIV3Schema``
of the storage version of each CustomResourceDefinition.

Protobuf: kubectl's typed clients send built-in objects as Kubernetes protobuf; the
field numbers and types of the messages are read from the ``generated.proto`` files of
k8s.io/api and k8s.io/apimachinery into ``protobuf.json``.

Run once, when upgrading the client, the CRDs or the protos. Each option regenerates only
what it names; a CRD file found in none of the ``--crds`` directories is left as it is::

    python -m agwlab.sandbox.schemas.generate [--builtins] [--protos PROTO_DIR] [--crds DIR ...]

The agentgateway schemas follow the release the lab installs, agentgateway **v1.4.1**: its
``agentgateway-crds`` chart templates (``controller/install/helm/agentgateway-crds/templates/``
at tag v1.4.1, commit 163ea2146), e.g. from a checkout of the agentgateway repository::

    git -C agentgateway archive v1.4.1 controller/install/helm/agentgateway-crds/templates \
        | tar -x -C /tmp/agw --strip-components=5
    python -m agwlab.sandbox.schemas.generate --crds /tmp/agw

The Gateway API schemas come from ``config/crd/standard/`` of kubernetes-sigs/gateway-api v1.6.1,
the version agentgateway v1.4.1's ``go.mod`` pins. ``NOTICE`` records each source.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes.client as k8s
import yaml

__all__ = ["builtin_schema", "main"]

HERE = Path(__file__).resolve().parent

BUILTINS = {
    ("", "namespaces"): "V1Namespace",
    ("", "configmaps"): "V1ConfigMap",
    ("", "secrets"): "V1Secret",
    ("", "services"): "V1Service",
    ("", "pods"): "V1Pod",
    ("", "events"): "CoreV1Event",
    ("", "endpoints"): "V1Endpoints",
    ("apps", "deployments"): "V1Deployment",
    ("apps", "replicasets"): "V1ReplicaSet",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "V1CustomResourceDefinition",
    ("", "serviceaccounts"): "V1ServiceAccount",
    ("rbac.authorization.k8s.io", "roles"): "V1Role",
    ("rbac.authorization.k8s.io", "clusterroles"): "V1ClusterRole",
    ("rbac.authorization.k8s.io", "rolebindings"): "V1RoleBinding",
    ("rbac.authorization.k8s.io", "clusterrolebindings"): "V1ClusterRoleBinding",
}

CRD_FILES = {
    ("gateway.networking.k8s.io", "gatewayclasses"): "gateway.networking.k8s.io_gatewayclasses.yaml",
    ("gateway.networking.k8s.io", "gateways"): "gateway.networking.k8s.io_gateways.yaml",
    ("gateway.networking.k8s.io", "httproutes"): "gateway.networking.k8s.io_httproutes.yaml",
    ("agentgateway.dev", "agentgatewaybackends"): "agentgateway.dev_agentgatewaybackends.yaml",
    ("agentgateway.dev", "agentgatewaypolicies"): "agentgateway.dev_agentgatewaypolicies.yaml",
    ("agentgateway.dev", "agentgatewayparameters"): "agentgateway.dev_agentgatewayparameters.yaml",
    ("monitoring.coreos.com", "podmonitors"): "monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com", "prometheuses"): "monitoring.coreos.com_prometheuses.yaml",
}
# The Prometheus CRD's schema is ~800 kB; the sandbox keeps the fields the lab reads (which
# monitors a Prometheus selects, how often it scrapes) and lets the rest through unchecked.
TRIMMED = {
    ("monitoring.coreos.com", "prometheuses"): ("podMonitorSelector", "podMonitorNamespaceSelector",
                                                "serviceMonitorSelector", "serviceMonitorNamespaceSelector",
                                                "scrapeInterval", "replicas", "version"),
}


def crd_document(group: str, plural: str, crd: dict[str, Any], source: str) -> dict[str, Any]:
    """The schema file for one CRD (its storage version), trimmed where ``TRIMMED`` says."""
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = version["schema"]["openAPIV3Schema"]
    keep = TRIMMED.get((group, plural))
    if keep:
        spec = schema["properties"]["spec"]
        spec["properties"] = {k: v for k, v in spec["properties"].items() if k in keep}
        spec["x-kubernetes-preserve-unknown-fields"] = True
        spec.pop("x-kubernetes-validations", None)
        schema["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"source": source, "version": version["name"],
            "bundleVersion": crd["metadata"].get("annotations", {}).get("gateway.networking.k8s.io/bundle-version", ""),
            "schema": schema}

# Lists the Kubernetes API merges by key (patchMergeKey / listMapKeys in the Go types).
MERGE_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("V1PodSpec", "containers"): ("name",),
    ("V1PodSpec", "initContainers"): ("name",),
    ("V1PodSpec", "ephemeralContainers"): ("name",),
    ("V1PodSpec", "volumes"): ("name",),
    ("V1PodSpec", "imagePullSecrets"): ("name",),
    ("V1PodSpec", "hostAliases"): ("ip",),
    ("V1Container", "ports"): ("containerPort", "protocol"),
    ("V1Container", "env"): ("name",),
    ("V1Container", "volumeMounts"): ("mountPath",),
    ("V1Container", "volumeDevices"): ("devicePath",),
    ("V1ServiceSpec", "ports"): ("port", "protocol"),
    ("V1ObjectMeta", "ownerReferences"): ("uid",),
    ("V1PodStatus", "conditions"): ("type",),
    ("V1DeploymentStatus", "conditions"): ("type",),
    ("V1ReplicaSetStatus", "conditions"): ("type",),
    ("V1NamespaceStatus", "conditions"): ("type",),
    ("V1ServiceStatus", "conditions"): ("type",),
    ("V1PodStatus", "podIPs"): ("ip",),
}
# The patch merge key is the first list-map key; "protocol" has a server default.
PATCH_MERGE_KEY = {("V1Container", "ports"): "containerPort", ("V1ServiceSpec", "ports"): "port"}
INT_OR_STRING = {"targetPort", "port", "maxSurge", "maxUnavailable"}
_PRIMITIVES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytes": {"type": "string", "format": "byte"},
}


def _type_schema(type_str: str, owner: str, field: str, stack: tuple[str, ...]) -> dict:
    type_str = type_str.strip()
    if type_str in _PRIMITIVES:
        return dict(_PRIMITIVES[type_str])
    if type_str == "object":
        if field in INT_OR_STRING:
            return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    m = re.fullmatch(r"(?:List|list)\[(.+)\]", type_str)
    if m:
        out: dict[str, Any] = {"type": "array", "items": _type_schema(m.group(1), owner, field, stack)}
        keys = MERGE_KEYS.get((owner, field))
        if keys:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = list(keys)
            out["x-kubernetes-patch-merge-key"] = PATCH_MERGE_KEY.get((owner, field), keys[0])
            out["x-kubernetes-patch-strategy"] = "merge"
        return out
    m = re.fullmatch(r"(?:Dict|dict)\[\s*str\s*,\s*(.+)\]", type_str)
    if m:
        return {"type": "object", "additionalProperties": _type_schema(m.group(1), owner, field, stack)}
    return builtin_schema(type_str, stack)


def builtin_schema(model_name: str, stack: tuple[str, ...] = ()) -> dict:
    """The structural schema of one ``kubernetes.client`` model class."""
    if model_name in stack:  # recursive types (none in the served kinds) stay open
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    cls = getattr(k8s, model_name)
    props: dict[str, Any] = {}
    required: list[str] = []
    fields = getattr(cls, "model_fields", {})
    for attr, type_str in cls.openapi_types.items():
        name = cls.attribute_map[attr]
        sub = _type_schema(type_str, model_name, name, (*stack, model_name))
        info = fields.get(attr)
        if info is not None and info.description:
            sub["description"] = info.description
        if info is not None and info.is_required() and name not in ("apiVersion", "kind"):
            required.append(name)
        props[name] = sub
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


_MESSAGE = re.compile(r"^message (\w+) \{(.*?)^\}", re.DOTALL | re.MULTILINE)
_FIELD = re.compile(r"^\s*(optional|repeated)?\s*(map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;",
                    re.MULTILINE)


def proto_messages(proto_dir: Path) -> dict[str, dict[str, list]]:
    """``{"pkg.Message": {"<number>": [name, type, repeated]}}`` from every ``generated.proto``.

    Map fields have type ``map<K,V>``; message types are fully qualified.
    """
    out: dict[str, dict[str, list]] = {}
    for path in sorted(proto_dir.rglob("generated.proto")):
        text = path.read_text()
        found = re.search(r"^package ([\w.]+);", text, re.MULTILINE)
        assert found is not None, "a .proto file without a package line"
        package = found.group(1)
        text = re.sub(r"//[^\n]*", "", text)
        names = set(re.findall(r"^message (\w+) \{", text, re.MULTILINE))
        for m in _MESSAGE.finditer(text):
            fields: dict[str, list] = {}
            for label, typ, key, value, name, number in _FIELD.findall(m.group(2)):
                if key:
                    value = f"{package}.{value}" if value in names else value
                    typ = f"map<{key},{value}>"
                elif typ in names:
                    typ = f"{package}.{typ}"
                fields[number] = [name, typ, label == "repeated"]
            out[f"{package}.{m.group(1)}"] = fields
    return out


# Where each group's CRD files come from; written into the generated files as ``source``.
CRD_SOURCES = {
    "gateway.networking.k8s.io": "kubernetes-sigs/gateway-api v1.6.1 config/crd/standard/",
    "agentgateway.dev": "agentgateway/agentgateway v1.4.1 (163ea2146) "
                        "controller/install/helm/agentgateway-crds/templates/",
    "monitoring.coreos.com": "kube-prometheus-stack 88.5.3 charts/crds/crds/",
}


def main(argv: list[str]) -> int:
    """Regenerate the schema files the options name (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m agwlab.sandbox.schemas.generate")
    parser.add_argument("--builtins", action="store_true",
                        help="the built-in kinds, from the installed kubernetes client's models")
    parser.add_argument("--protos", type=Path, help="a directory holding k8s.io/api and apimachinery generated.proto")
    parser.add_argument("--crds", type=Path, action="append", default=[],
                        help="a directory holding CRD YAML files (may be given more than once)")
    args = parser.parse_args(argv)
    if not (args.builtins or args.protos or args.crds):
        parser.error("nothing to do: give --builtins, --protos or --crds")
    if args.protos:
        doc = {"source": "generated.proto of k8s.io/api and k8s.io/apimachinery v0.32.9",
               "messages": proto_messages(args.protos)}
        (HERE / "protobuf.json").write_text(json.dumps(doc, separators=(",", ":")))
    if args.builtins:
        for (group, plural), model in BUILTINS.items():
            schema = builtin_schema(model)
            if plural == "secrets":
                schema["properties"]["data"]["additionalProperties"] = {"type": "string", "format": "byte"}
            doc = {"source": f"kubernetes Python client {kubernetes.__version__}, model {model}",
                   "schema": schema}
            (HERE / f"{plural}.{group or 'core'}.json").write_text(json.dumps(doc, separators=(",", ":")))
    for (group, plural), fname in CRD_FILES.items():
        found = next((d / fname for d in args.crds if (d / fname).is_file()), None)
        if found is None:
            continue
        crd = yaml.load(found.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        doc = crd_document(group, plural, crd, CRD_SOURCES[group] + fname)
        (HERE / f"{plural}.{group}.json").write_text(json.dumps(doc, separators=(",", ":")))
        print(f"{plural}.{group}.json <- {found}")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
