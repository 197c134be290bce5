"""The API server's private CA and serving certificate."""

from __future__ import annotations

import ipaddress
import stat

from cryptography import x509

from agwlab.sandbox.apiserver.tls import ensure_tls


def test_certificate_covers_hosts_and_is_reused(tmp_path):
    files = ensure_tls(tmp_path / "pki", ["127.64.0.1"])
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.64.0.1") in san.get_values_for_type(x509.IPAddress)
    cert.verify_directly_issued_by(ca)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    first = files.cert.read_bytes()
    assert ensure_tls(tmp_path / "pki", ["127.64.0.1"]).cert.read_bytes() == first
    other = ensure_tls(tmp_path / "pki", ["127.65.0.1"])  # a new address needs a new certificate
    assert other.cert.read_bytes() != first
