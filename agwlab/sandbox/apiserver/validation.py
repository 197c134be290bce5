"""Validation against the kinds' structural schemas, as the real API server does it.

:func:`admit` is the one call: it drops unknown fields (refusing them under
``fieldValidation=Strict``), applies schema ``default:``s and the built-in kinds' defaults,
then validates types, enums, required fields, bounds, patterns, object names and labels,
and the CRDs' ``x-kubernetes-validations`` CEL rules (with ``common-expression-language``; a rule
it cannot compile or evaluate is skipped; a kind's rules are compiled the first time an object
of that kind is admitted). Given the stored object, it also keeps what the server allocated and
refuses changes to immutable fields. Errors read like the real server's.

Example:
    >>> obj = {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
    ...        "metadata": {"name": "b", "namespace": "default"}, "spec": {"type": "MCP"}}
    >>> admit(obj)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    agwlab.sandbox.store.BadRequest: ... strict decoding error: unknown field "spec.type"
"""

from __future__ import annotations

import base64
import functools
import importlib.machinery
import importlib.util
import json
import logging
import os
import re
import sys
from typing import Any

from .. import kinds as _kinds
from ..schemas import kind_schema
from ..store import BadRequest, Invalid, NotFound
from . import rbac_validation
from .defaults import apply_builtin_defaults

__all__ = ["MAX_DATA_BYTES", "admit", "check_unknown", "compile_rules", "validate_name", "warm_up"]

log = logging.getLogger(__name__)

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                  "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
                  "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
              "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
              "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return '"object"' if isinstance(value, dict) else '"array"'
    return str(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def validate_name(info: _kinds.KindInfo, name: str) -> str | None:
    """The real server's complaint about an object name, or ``None`` if it is fine."""
    if info.plural in ("namespaces",):
        return None if _DNS1123_LABEL.match(name) and len(name) <= 63 else _LABEL_MSG
    if info.plural == "services":
        return None if _DNS1035_LABEL.match(name) and len(name) <= 63 else _DNS1035_MSG
    if len(name) > 253:
        return "must be no more than 253 characters"
    return None if _DNS1123_SUBDOMAIN.match(name) else _SUBDOMAIN_MSG


def _check_labels(labels: Any, field: str, causes: list[dict]) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not _QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and not _DNS1123_SUBDOMAIN.match(prefix)):
            causes.append({"reason": "FieldValueInvalid", "field": field,
                           "message": f"Invalid value: {json.dumps(key)}: name part must consist of "
                                      "alphanumeric characters, '-', '_' or '.', and must start and end "
                                      "with an alphanumeric character"})
        if not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63:
            causes.append({"reason": "FieldValueInvalid", "field": f"{field}",
                           "message": f"Invalid value: {_quote(value)}: a valid label must be an empty "
                                      "string or consist of alphanumeric characters, '-', '_' or '.', and "
                                      "must start and end with an alphanumeric character"})


@functools.cache
def _meta_schema() -> dict:
    schema = kind_schema("", "configmaps") or {}
    return schema.get("properties", {}).get("metadata", {"type": "object"})


@functools.cache
def _cel() -> Any:
    """The ``common-expression-language`` extension module (the Rust CEL implementation).

    Its package ``__init__`` also imports the library's command-line shell (prompt_toolkit,
    rich): ~15 MB and ~0.3 s the server never uses. So the extension is loaded on its own and
    registered as ``cel.cel``, where the package would put it (a later ``import cel`` reuses it).
    """
    try:
        existing = sys.modules.get("cel.cel")
        if existing is not None:
            return existing
        spec = importlib.util.find_spec("cel")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(folder, "cel" + suffix)
                if os.path.exists(path):
                    loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
                    found = importlib.util.spec_from_loader("cel.cel", loader, origin=path)
                    if found is None:
                        continue
                    module = importlib.util.module_from_spec(found)
                    loader.exec_module(module)
                    sys.modules["cel.cel"] = module
                    return module
    except (ImportError, OSError):
        log.debug("loading the CEL extension on its own failed; importing the package", exc_info=True)
    import cel

    return cel


@functools.lru_cache(maxsize=4096)
def _cel_program(rule: str) -> Any:
    try:
        return _cel().compile(rule)  # compiled once per rule
    except Exception:  # noqa: BLE001 - rules the library cannot compile are skipped, as documented
        return None


class _Walker:
    """One pass over an object and its schema, collecting what the server would say."""

    def __init__(self, custom: bool) -> None:
        self.custom = custom
        self.secret = False
        self.defaults = True
        self.unknown: list[str] = []
        self.causes: list[dict] = []

    def cause(self, field: str, message: str, reason: str = "FieldValueInvalid") -> None:
        self.causes.append({"reason": reason, "message": message, "field": field})

    def shown(self, value: Any) -> str:
        """A value as error messages quote it; a Secret's values are never echoed."""
        return '"<redacted>"' if self.secret and isinstance(value, str) else _quote(value)

    # -- pruning + defaulting (mutates) ----------------------------------------------------

    def prune_and_default(self, value: Any, schema: dict, path: str) -> Any:
        if not isinstance(schema, dict):
            return value
        if isinstance(value, dict):
            props = schema.get("properties")
            addl = schema.get("additionalProperties")
            preserve = schema.get("x-kubernetes-preserve-unknown-fields")
            for key in list(value):
                sub = (props or {}).get(key)
                if sub is None and isinstance(addl, dict):
                    sub = addl
                if sub is None:
                    if addl is True or preserve:
                        continue
                    self.unknown.append(f"{path}.{key}" if path else key)
                    del value[key]
                    continue
                if value[key] is None and not sub.get("nullable"):
                    del value[key]  # nulls of non-nullable fields are dropped, as the server does
                    continue
                value[key] = self.prune_and_default(value[key], sub, f"{path}.{key}" if path else key)
            for key, sub in (props or {}).items() if self.defaults else ():
                if key not in value and isinstance(sub, dict) and "default" in sub:
                    value[key] = json.loads(json.dumps(sub["default"]))
                    value[key] = self.prune_and_default(value[key], sub, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                for i, item in enumerate(value):
                    value[i] = self.prune_and_default(item, items, f"{path}[{i}]")
        return value

    # -- validation (read-only) -----------------------------------------------------------------

    def validate(self, value: Any, schema: dict, path: str) -> None:
        if not isinstance(schema, dict):
            return
        if value is None:
            if not schema.get("nullable"):
                self.cause(path, f'Invalid value: "null": {path} in body must be of type '
                                 f'{schema.get("type", "object")}: "null"')
            return
        if schema.get("x-kubernetes-int-or-string"):
            if not isinstance(value, (int, str)) or isinstance(value, bool):
                self.cause(path, f"Invalid value: {self.shown(value)}: {path} in body must be of type "
                                 f"integer-or-string: {json.dumps(_type_name(value))}")
                return
        elif "type" in schema:
            want, got = schema["type"], _type_name(value)
            ok = got == want or (want == "number" and got == "integer")
            if not ok:
                self.cause(path, f"Invalid value: {self.shown(value)}: {path} in body must be of type "
                                 f"{want}: {json.dumps(got)}")
                return
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(_quote(v) for v in schema["enum"])
            self.cause(path, f"Unsupported value: {self.shown(value)}: supported values: {allowed}",
                       "FieldValueNotSupported")
        if isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._number(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, dict):
            self._object(value, schema, path)
        for combinator in ("oneOf", "anyOf"):
            options = schema.get(combinator)
            if isinstance(value, dict) and options and all(set(o) <= {"required"} for o in options):
                n = sum(all(k in value for k in o.get("required", [])) for o in options)
                if (combinator == "oneOf" and n != 1) or (combinator == "anyOf" and n == 0):
                    self.cause(path, f'Invalid value: "object": {path} in body must match '
                                     f'{"exactly one" if combinator == "oneOf" else "at least one"} schema')
        if self.custom and schema.get("x-kubernetes-validations"):
            self._cel(value, schema["x-kubernetes-validations"], path)

    def _string(self, value: str, schema: dict, path: str) -> None:
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.cause(path, f"Too long: may not be more than {schema['maxLength']} bytes", "FieldValueTooLong")
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.cause(path, f"Invalid value: {self.shown(value)}: {path} in body should be at least "
                             f"{schema['minLength']} chars long")
        pattern = schema.get("pattern")
        if pattern:
            try:
                if not re.search(pattern, value):
                    self.cause(path, f"Invalid value: {self.shown(value)}: {path} in body should match "
                                     f"'{pattern}'")
            except re.error:
                pass

    def _number(self, value: float, schema: dict, path: str) -> None:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and (value < lo or (schema.get("exclusiveMinimum") and value == lo)):
            self.cause(path, f"Invalid value: {value}: {path} in body should be greater than "
                             f"{'' if schema.get('exclusiveMinimum') else 'or equal to '}{lo}")
        if hi is not None and (value > hi or (schema.get("exclusiveMaximum") and value == hi)):
            self.cause(path, f"Invalid value: {value}: {path} in body should be less than "
                             f"{'' if schema.get('exclusiveMaximum') else 'or equal to '}{hi}")

    def _array(self, value: list, schema: dict, path: str) -> None:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.cause(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                       "FieldValueTooMany")
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.cause(path, f"Invalid value: {len(value)}: {path} in body should have at least "
                             f"{schema['minItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self.validate(item, items, f"{path}[{i}]")
        keys = schema.get("x-kubernetes-list-map-keys")
        if schema.get("x-kubernetes-list-type") == "map" and keys and self.custom:
            seen = set()
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    k = json.dumps([item.get(key) for key in keys])
                    if k in seen:
                        self.cause(f"{path}[{i}]", f"Duplicate value: {json.dumps({key: item.get(key) for key in keys})}",
                                   "FieldValueDuplicate")
                    seen.add(k)

    def _object(self, value: dict, schema: dict, path: str) -> None:
        for key in schema.get("required", []):
            if key not in value:
                self.cause(f"{path}.{key}" if path else key, "Required value", "FieldValueRequired")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.cause(path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                       "FieldValueTooMany")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.cause(path, f"Invalid value: {len(value)}: {path} in body should have at least "
                             f"{schema['minProperties']} properties")
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, addl if isinstance(addl, dict) else None)
            if sub is not None:
                self.validate(item, sub, f"{path}.{key}" if path else key)

    def _cel(self, value: Any, rules: list[dict], path: str) -> None:
        for rule in rules:
            text = rule.get("rule", "")
            if "oldSelf" in text:
                continue  # transition rules need the old object; this server does not check them
            program = _cel_program(text)
            if program is None:
                continue
            try:
                result = program.execute({"self": value})
            except Exception:  # noqa: BLE001, S112 - e.g. a Kubernetes-only CEL function: skip the rule
                continue
            if result is False:
                field = path
                if rule.get("fieldPath"):
                    field = path + rule["fieldPath"] if path else rule["fieldPath"].lstrip(".")
                message = rule.get("message") or f"failed rule: {text}"
                self.cause(field, f"Invalid value: {self.shown(value)}: {message}")


def admit(obj: dict, *, field_validation: str = "Strict", info: _kinds.KindInfo | None = None,
          subresource: str | None = None, old: dict | None = None) -> list[str]:
    """Default and validate ``obj`` in place, as the API server does before storing it.

    Args:
        obj: the object (``apiVersion``/``kind`` set); modified in place.
        field_validation: ``Strict`` (unknown fields refused), ``Warn`` or ``Ignore``.
        info: the kind, when the caller already looked it up.
        subresource: ``"status"`` skips name checks and defaulting of the spec.
        old: the stored object this write replaces (updates only): values the server
            allocated are kept and immutable fields are enforced against it.

    Returns:
        Warnings to send back (``Warn`` mode's unknown fields).

    Raises:
        BadRequest: unknown fields under ``Strict``.
        Invalid: the object breaks the schema (the message names each field).
        NotFound: the kind is not served.
    """
    info = info or _kinds.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    if info is None:
        raise NotFound(f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"')
    schema = kind_schema(info.group, info.plural) or {"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True}
    if info.custom:
        compile_rules(info)
    walker = _Walker(custom=info.custom)
    walker.secret = info.kind == "Secret"
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                         "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta")
    _check_decodable(obj, info)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    body = walker.prune_and_default(body, {**schema, "properties": {
        k: v for k, v in (schema.get("properties") or {}).items() if k not in ("apiVersion", "kind", "metadata")}},
        "")
    if meta is not None:
        walker.prune_and_default(meta, _meta_schema(), "metadata")
    if walker.unknown:
        if field_validation == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in walker.unknown)
            raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a '
                             f"{info.kind}: strict decoding error: {fields}")
        warnings = [f'unknown field "{f}"' for f in walker.unknown] if field_validation == "Warn" else []
    else:
        warnings = []
    for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
        del obj[key]
    obj.update(body)
    if subresource is None:
        if old is not None:
            _keep_allocated(old, obj, info)
        apply_builtin_defaults(obj, info)
    # validate
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if subresource is None:
        if name:
            problem = validate_name(info, name)
            if problem:
                walker.cause("metadata.name", f"Invalid value: {json.dumps(name)}: {problem}")
        elif not meta.get("generateName"):
            walker.cause("metadata.name", "Required value: name or generateName is required",
                         "FieldValueRequired")
        else:
            prefix = str(meta["generateName"])
            problem = validate_name(info, prefix[:-1] if prefix.endswith("-") else prefix)
            if problem:
                walker.cause("metadata.generateName", f"Invalid value: {json.dumps(prefix)}: {problem}")
        _check_labels(meta.get("labels"), "metadata.labels", walker.causes)
    for key, sub in (schema.get("properties") or {}).items():
        if key in ("apiVersion", "kind", "metadata") or key not in obj:
            continue
        walker.validate(obj[key], sub, key)
    for key in schema.get("required", []):
        if key not in obj and key not in ("apiVersion", "kind", "metadata"):
            walker.cause(key, "Required value", "FieldValueRequired")
    if info.custom and schema.get("x-kubernetes-validations"):
        walker._cel(obj, schema["x-kubernetes-validations"], "")
    if subresource is None:
        _builtin_checks(obj, info, walker)
        if old is not None:
            _immutable_checks(old, obj, info, walker)
    if walker.causes:
        raise Invalid.of(info, info.kind, name, walker.causes)
    return warnings


MAX_DATA_BYTES = 1024 * 1024
"""The most a ConfigMap or Secret may hold (``corev1.MaxSecretSize``)."""
_BASE64 = re.compile(r"[A-Za-z0-9+/]")


def _go_type(value: Any) -> str:
    return {"object": "object", "array": "array", "string": "string", "boolean": "bool", "null": "null"}.get(
        _type_name(value), "number")


def _base64_error_at(value: str) -> int | None:
    """Where Go's base64 decoder gives up on ``value`` (``None`` when it decodes)."""
    text = value.replace("\r", "").replace("\n", "")
    body = text.rstrip("=")
    for i, ch in enumerate(body):
        if not _BASE64.match(ch):
            return i
    padding = len(text) - len(body)
    if (len(body) + padding) % 4 or padding > 2 or len(body) % 4 == 1:
        return len(body) - len(body) % 4 if len(body) % 4 == 1 else len(text)
    return None


def _check_decodable(obj: dict, info: _kinds.KindInfo) -> None:
    """What the real server's decoder refuses before validation: labels that are not a map of
    strings, Secret ``data`` / ConfigMap ``binaryData`` that is not base64 (a key pasted under
    ``data:`` instead of ``stringData:``)."""
    def refuse(detail: str) -> BadRequest:
        return BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {detail}')

    meta = obj.get("metadata") or {}
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise refuse(f"json: cannot unmarshal {_go_type(value)} into Go struct field ObjectMeta.metadata."
                         f"{field} of type map[string]string")
        for item in value.values():
            if not isinstance(item, str):
                raise refuse(f"json: cannot unmarshal {_go_type(item)} into Go struct field ObjectMeta.metadata."
                             f"{field} of type string")
    if info.custom or info.group:
        return
    fields = {"Secret": ("data",), "ConfigMap": ("binaryData",)}.get(info.kind, ())
    for field in fields:
        data = obj.get(field)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise refuse(f"json: cannot unmarshal {_go_type(data)} into Go struct field {info.kind}.{field} of "
                         "type map[string][]uint8")
        for item in data.values():
            if not isinstance(item, str):
                raise refuse(f"json: cannot unmarshal {_go_type(item)} into Go struct field {info.kind}.{field} "
                             "of type []uint8")
            at = _base64_error_at(item)
            if at is not None:
                raise refuse(f"illegal base64 data at input byte {at}")  # never the value: it may be a key


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value).replace("\n", "")))
    except ValueError:
        return len(str(value))


def _check_data_size(obj: dict, info: _kinds.KindInfo, walker: _Walker) -> None:
    if info.custom or info.group or info.kind not in ("ConfigMap", "Secret"):
        return
    too_long = f"Too long: may not be more than {MAX_DATA_BYTES} bytes"
    if info.kind == "ConfigMap":
        size = sum(len(k) + len(str(v)) for k, v in (obj.get("data") or {}).items())
        size += sum(len(k) + _decoded_len(v) for k, v in (obj.get("binaryData") or {}).items())
        if size > MAX_DATA_BYTES:
            walker.cause("[]", too_long, "FieldValueTooLong")
    else:
        size = sum(len(k) + _decoded_len(v) for k, v in (obj.get("data") or {}).items())
        if size > MAX_DATA_BYTES:
            walker.cause("data", too_long, "FieldValueTooLong")


def _builtin_checks(obj: dict, info: _kinds.KindInfo, walker: _Walker) -> None:
    """The few built-in rules a learner's manifest is likely to trip over."""
    spec = obj.get("spec") or {}
    rbac_validation.check_object(obj, walker.cause)
    _check_data_size(obj, info, walker)
    if info.kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
            walker.cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
    if info.kind in ("Deployment", "ReplicaSet"):
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            shown = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
            walker.cause("spec.template.metadata.labels",
                         f"Invalid value: {shown}: `selector` does not match template `labels`")
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        _containers(pod_spec, "spec.template.spec", walker)
    elif info.kind == "Pod":
        _containers(spec, "spec", walker)
    elif info.kind == "Service":
        _service_ports(spec.get("ports"), walker)


def _service_ports(ports: Any, walker: _Walker) -> None:
    """A Service's ports: in range, named when there are several, no name or (port, protocol) twice."""
    ports = [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            walker.cause(f"spec.ports[{i}].name", "Required value", "FieldValueRequired")
        elif name:
            if name in names:
                walker.cause(f"spec.ports[{i}].name", f"Duplicate value: {json.dumps(name)}", "FieldValueDuplicate")
            names.add(name)
        p = port.get("port")
        if isinstance(p, int) and not 1 <= p <= 65535:
            walker.cause(f"spec.ports[{i}].port", f"Invalid value: {p}: must be between 1 and 65535, "
                                                  "inclusive")
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        key = (port.get("port"), port.get("protocol") or "TCP")
        if key in seen:
            # the real server prints the clashing key as Go's %#v of a core.ServicePort
            shown = (f'core.ServicePort{{Name:"", Protocol:{json.dumps(str(key[1]))}, AppProtocol:(*string)(nil), '
                     f'Port:{key[0]}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')
            walker.cause(f"spec.ports[{i}]", f"Duplicate value: {shown}", "FieldValueDuplicate")
        seen.add(key)


def _keep_allocated(old: dict, new: dict, info: _kinds.KindInfo) -> None:
    """Keep what the server allocated when an update leaves it out (a Service's IPs, node ports)."""
    if info.kind != "Service" or info.custom:
        return
    before, after = old.get("spec") or {}, new.get("spec")
    if not isinstance(after, dict) or after.get("type", "ClusterIP") == "ExternalName":
        return
    old_ip, old_ips = before.get("clusterIP") or "", before.get("clusterIPs") or []
    if not old_ip:
        return
    new_ip, new_ips = after.get("clusterIP") or "", after.get("clusterIPs") or []
    if not new_ip and (not new_ips or new_ips == old_ips):
        after["clusterIP"], after["clusterIPs"] = old_ip, list(old_ips or [old_ip])
    elif new_ip != old_ip and (not new_ips or new_ips == old_ips):
        after["clusterIPs"] = [new_ip]  # the singular field changed: the plural follows it
    elif new_ip == old_ip and not new_ips:
        after["clusterIPs"] = list(old_ips or [old_ip])
    allocated = {(p.get("port"), p.get("protocol") or "TCP"): p["nodePort"]
                 for p in before.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
    if after.get("type") in ("NodePort", "LoadBalancer"):
        for p in after.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                found = allocated.get((p.get("port"), p.get("protocol") or "TCP"))
                if found:
                    p["nodePort"] = found


def _go_selector(sel: Any) -> str:
    """A label selector as Go's ``%#v`` prints it (the real server's immutable-field message)."""
    sel = sel if isinstance(sel, dict) else {}

    def strings(items: Any) -> str:
        return ("[]string{" + ", ".join(json.dumps(str(v)) for v in items) + "}") if items else "[]string(nil)"

    labels = sel.get("matchLabels")
    shown = ("map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}"
                                             for k, v in sorted(labels.items())) + "}"
             if isinstance(labels, dict) and labels else "map[string]string(nil)")
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        reqs = ", ".join(f'v1.LabelSelectorRequirement{{Key:{json.dumps(str(e.get("key", "")))}, '
                         f'Operator:{json.dumps(str(e.get("operator", "")))}, Values:{strings(e.get("values"))}}}'
                         for e in exprs if isinstance(e, dict))
        shown_exprs = f"[]v1.LabelSelectorRequirement{{{reqs}}}"
    else:
        shown_exprs = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{shown}, MatchExpressions:{shown_exprs}}}"


def _immutable_checks(old: dict, new: dict, info: _kinds.KindInfo, walker: _Walker) -> None:
    """The fields the real server refuses to change once an object exists."""
    if info.custom:
        return
    rbac_validation.check_unchanged(old, new, walker.cause)
    before, after = old.get("spec") or {}, new.get("spec") or {}
    if info.kind in ("Deployment", "ReplicaSet"):
        if before.get("selector") != after.get("selector"):
            walker.cause("spec.selector", f"Invalid value: {_go_selector(after.get('selector'))}: field is immutable")
    elif info.kind == "Service":
        types = (before.get("type", "ClusterIP"), after.get("type", "ClusterIP"))
        old_ips, new_ips = before.get("clusterIPs") or [], after.get("clusterIPs") or []
        if "ExternalName" not in types and old_ips and new_ips and old_ips[0] != new_ips[0]:
            shown = "[]string{" + ", ".join(json.dumps(str(ip)) for ip in new_ips) + "}"
            walker.cause("spec.clusterIPs[0]", f"Invalid value: {shown}: may not change once set")
    elif info.kind in ("ConfigMap", "Secret"):
        if info.kind == "Secret" and old.get("type", "Opaque") != new.get("type", "Opaque"):
            walker.cause("type", f"Invalid value: {_quote(new.get('type'))}: field is immutable")
        if old.get("immutable") is True:
            forbidden = "Forbidden: field is immutable when `immutable` is set"
            if new.get("immutable") is not True:
                walker.cause("immutable", forbidden, "FieldValueForbidden")
            fields = ("data", "binaryData") if info.kind == "ConfigMap" else ("data",)
            for field in fields:
                if (old.get(field) or {}) != (new.get(field) or {}):
                    walker.cause(field, forbidden, "FieldValueForbidden")


def _containers(pod_spec: dict, path: str, walker: _Walker) -> None:
    containers = pod_spec.get("containers")
    if isinstance(containers, list) and not containers:
        walker.cause(f"{path}.containers", "Required value", "FieldValueRequired")
    names: set[str] = set()
    for i, c in enumerate(containers or []):
        if isinstance(c, dict) and not c.get("image"):
            walker.cause(f"{path}.containers[{i}].image", "Required value", "FieldValueRequired")
        name = c.get("name") if isinstance(c, dict) else None
        if isinstance(name, str) and name:
            if name in names:
                walker.cause(f"{path}.containers[{i}].name", f"Duplicate value: {json.dumps(name)}",
                             "FieldValueDuplicate")
            names.add(name)
    volumes: set[str] = set()
    for i, v in enumerate(pod_spec.get("volumes") or []):
        name = v.get("name") if isinstance(v, dict) else None
        if isinstance(name, str) and name:
            if name in volumes:
                walker.cause(f"{path}.volumes[{i}].name", f"Duplicate value: {json.dumps(name)}",
                             "FieldValueDuplicate")
            volumes.add(name)


def check_unknown(obj: dict, info: _kinds.KindInfo, field_validation: str = "Strict") -> list[str]:
    """Drop unknown fields from ``obj`` (a partial object, e.g. an applied configuration).

    Returns ``Warn`` mode's warnings.

    Raises:
        BadRequest: unknown fields under ``Strict``.
    """
    schema = kind_schema(info.group, info.plural) or {"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True}
    walker = _Walker(custom=info.custom)
    meta = obj.get("metadata")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k not in ("apiVersion", "kind", "metadata")}
    walker.defaults = False
    walker.prune_and_default(body, {**schema, "properties": props}, "")
    if isinstance(meta, dict):
        walker.prune_and_default(meta, _meta_schema(), "metadata")
    for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
        del obj[key]
    obj.update(body)
    if walker.unknown and field_validation == "Strict":
        fields = ", ".join(f'unknown field "{f}"' for f in walker.unknown)
        raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a '
                         f"{info.kind}: strict decoding error: {fields}")
    return [f'unknown field "{f}"' for f in walker.unknown] if field_validation == "Warn" else []



_COMPILED: dict[tuple[str, str], int] = {}


def compile_rules(info: _kinds.KindInfo) -> int:
    """Compile one kind's CEL rules (once; later calls are free); returns how many compiled.

    :func:`admit` calls this the first time it sees an object of a custom kind, so the
    server only holds the compiled rules of the kinds a learner actually uses.
    """
    key = (info.group, info.plural)
    if key in _COMPILED:
        return _COMPILED[key]
    count = 0

    def walk(node: Any) -> None:
        nonlocal count
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or []:
                if isinstance(rule, dict) and _cel_program(rule.get("rule", "")) is not None:
                    count += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(kind_schema(info.group, info.plural))
    _COMPILED[key] = count
    return count


def warm_up() -> int:
    """Compile every custom kind's CEL rules now; returns how many rules compiled.

    Not needed for correctness (:func:`admit` compiles a kind's rules on first use); it
    costs about 18 MB of memory for rules most sessions never evaluate.
    """
    _meta_schema()
    return sum(compile_rules(info) for info in _kinds.all_kinds() if info.custom)
