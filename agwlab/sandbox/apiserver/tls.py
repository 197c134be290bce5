"""TLS for the API server: a private CA and a serving certificate for loopback addresses.

kubectl (client-go) only sends a kubeconfig's bearer token over HTTPS, so the sandbox's
API server serves TLS. :func:`ensure_tls` makes a CA and a server certificate once and
reuses them; the kubeconfig carries the CA (``certificate-authority-data``).

Example:
    >>> files = ensure_tls(Path("/tmp/pki"), ["127.64.0.1"])    # doctest: +SKIP
    >>> uvicorn.run(app, ssl_certfile=files.cert, ssl_keyfile=files.key)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TlsFiles", "ensure_tls"]

# ``cryptography`` is imported only to make (or inspect unknown) certificates: reusing the
# files of an earlier start needs just this record of what the certificate covers (~10 MB less).
_RECORD = "apiserver.json"


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA certificate, serving certificate and its key are."""

    ca_cert: Path
    cert: Path
    key: Path

    def ca_data(self) -> str:
        """The CA certificate, base64 (for a kubeconfig's ``certificate-authority-data``)."""
        return base64.b64encode(self.ca_cert.read_bytes()).decode()


def _names(hosts: list[str]) -> list[Any]:
    from cryptography import x509

    out: list[Any] = []
    for h in dict.fromkeys([*hosts, "127.0.0.1", "localhost"]):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _valid(names: set[str], expires: _dt.datetime, hosts: list[str]) -> bool:
    return all(h in names for h in hosts) and expires > _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)


def _covers(cert_path: Path, hosts: list[str]) -> bool:
    try:
        data = cert_path.read_bytes()
    except OSError:
        return False
    try:
        record = json.loads((cert_path.parent / _RECORD).read_text(encoding="utf-8"))
        if record["sha256"] == hashlib.sha256(data).hexdigest():
            return _valid(set(record["names"]), _dt.datetime.fromisoformat(record["notAfter"]), hosts)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no record (or not this certificate's): read the certificate itself
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(data)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return _valid({str(n.value) for n in san}, cert.not_valid_after_utc, hosts)


def ensure_tls(directory: Path, hosts: list[str]) -> TlsFiles:
    """Create (or reuse) a CA and a serving certificate valid for ``hosts`` (IPs or names)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key")
    if files.key.exists() and files.ca_cert.exists() and _covers(files.cert, hosts):
        return files
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _dt.datetime.now(_dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agwlab-sandbox-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = _names(hosts)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert_pem)
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    record = {"sha256": hashlib.sha256(cert_pem).hexdigest(), "names": [str(n.value) for n in names],
              "notAfter": cert.not_valid_after_utc.isoformat()}
    (directory / _RECORD).write_text(json.dumps(record), encoding="utf-8")
    return files
