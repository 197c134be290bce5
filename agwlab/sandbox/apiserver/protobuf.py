"""Decode the Kubernetes protobuf encoding kubectl's typed clients send.

``kubectl create namespace|secret|configmap|deployment`` post built-in objects as
``application/vnd.kubernetes.protobuf``: the magic ``k8s\\x00`` followed by a
``runtime.Unknown`` envelope whose ``raw`` bytes are the object's message. The field
table comes from the real ``generated.proto`` files (``schemas/protobuf.json``); this
module turns a message into the object's JSON form.

Example:
    >>> decode(body)["kind"]            # doctest: +SKIP
    'Namespace'
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import json
from typing import Any

from ..schemas import SCHEMA_DIR
from ..store import BadRequest

__all__ = ["MAGIC", "decode"]

MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_GROUP_PACKAGES = {"": "k8s.io.api.core.v1.", "v1": "k8s.io.api.core.v1.", "apps/v1": "k8s.io.api.apps.v1.",
                   "autoscaling/v1": "k8s.io.api.autoscaling.v1.",
                   "rbac.authorization.k8s.io/v1": "k8s.io.api.rbac.v1.",
                   "authorization.k8s.io/v1": "k8s.io.api.authorization.v1.",
                   "authentication.k8s.io/v1": "k8s.io.api.authentication.v1."}


@functools.lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, list]]:
    return json.loads((SCHEMA_DIR / "protobuf.json").read_text())["messages"]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise BadRequest("the protobuf body is truncated")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise BadRequest(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int, bits: int = 64) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(typ: str, wire: int, value: Any) -> Any:
    if typ == "string":
        return value.decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(value).decode()
    if typ == "bool":
        return bool(value)
    if typ in ("int32", "int64", "uint32", "uint64"):
        return _signed(value)
    if typ == "double":
        import struct

        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    return value


def _time(value: dict) -> str | None:
    seconds = value.get("seconds", 0)
    if not seconds and not value.get("nanos"):
        return None  # Go's zero time: "not set"
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(buf: bytes, name: str) -> Any:
    name = name.lstrip(".")
    fields = _messages().get(name)
    if fields is None:
        raise BadRequest(f"cannot decode protobuf message {name}")
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        spec = fields.get(str(number))
        if spec is None:
            continue
        fname, typ, repeated = spec
        if typ.startswith("map<"):
            ktyp, vtyp = typ[4:-1].split(",", 1)
            entry = {n: (w, v) for n, w, v in _fields(value)}
            k = _scalar(ktyp, *entry[1]) if 1 in entry else ""
            if 2 in entry:
                w, v = entry[2]
                v = _message(v, vtyp) if "." in vtyp else _scalar(vtyp, w, v)
            else:
                v = "" if vtyp in ("string", "bytes") else None
            out.setdefault(fname, {})[k] = v
            continue
        if "." in typ:
            decoded = _message(value, typ)
            if decoded is None:
                continue
        elif wire == 2 and typ not in ("string", "bytes") and repeated:  # packed scalars
            items, pos = [], 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                items.append(_scalar(typ, 0, v))
            out.setdefault(fname, []).extend(items)
            continue
        else:
            decoded = _scalar(typ, wire, value)
        if repeated:
            out.setdefault(fname, []).append(decoded)
        elif decoded in ("", False, 0) and type(decoded) in (str, bool, int) and not (
                fname == "replicas" and name.endswith("Spec")):
            continue  # Go writes unset non-pointer fields as zero values; JSON would omit them
        else:
            out[fname] = decoded
    short = name.rsplit(".", 1)[-1]
    if name in (_META + "Time", _META + "MicroTime"):
        return _time(out)
    if short == "IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if short == "Quantity":
        return out.get("string", "")
    if name in (_META + "FieldsV1", "k8s.io.apimachinery.pkg.runtime.RawExtension"):
        raw = base64.b64decode(out.get("Raw") or out.get("raw") or "")
        return json.loads(raw) if raw else {}
    if name == _META + "Duration":
        return f"{out.get('duration', 0) / 1e9:g}s"
    return out


def decode(body: bytes) -> dict:
    """The JSON form of a Kubernetes-protobuf-encoded built-in object.

    Raises:
        BadRequest: not Kubernetes protobuf, or a kind this server cannot decode.
    """
    if not body.startswith(MAGIC):
        raise BadRequest("the body of the request is not Kubernetes protobuf (no k8s magic)")
    envelope = {n: v for n, _, v in _fields(body[len(MAGIC):])}
    type_meta = {n: v for n, _, v in _fields(envelope.get(1, b""))}
    api_version = type_meta.get(1, b"").decode()
    kind = type_meta.get(2, b"").decode()
    package = _GROUP_PACKAGES.get(api_version)
    if package is None or package + kind not in _messages():
        raise BadRequest(f"cannot decode {kind} {api_version} from protobuf; send JSON instead")
    obj = _message(envelope.get(2, b""), package + kind)
    return {"apiVersion": api_version, "kind": kind, **obj}
