"""The API server's private CA and serving certificate."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys

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


def test_reuse_does_not_import_cryptography(tmp_path):
    ensure_tls(tmp_path / "pki", ["127.64.0.1"])
    script = ("import sys\nfrom pathlib import Path\nfrom agwlab.sandbox.apiserver.tls import ensure_tls\n"
              f"files = ensure_tls(Path({str(tmp_path / 'pki')!r}), ['127.64.0.1'])\n"
              "print(sorted(m for m in sys.modules if m.startswith('cryptography')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # a certificate replaced behind the record's back is inspected, not trusted blindly
    (tmp_path / "pki" / "apiserver.crt").write_text("not a certificate")
    replaced = ensure_tls(tmp_path / "pki", ["127.64.0.1"])
    assert x509.load_pem_x509_certificate(replaced.cert.read_bytes())
