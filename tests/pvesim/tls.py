"""A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI.

Clients are given DIR/ca.pem, so TLS verification is exercised for real: the
server certificate names IP:127.0.0.1 and DNS:localhost in subjectAltName and
is signed by the CA, whose key never leaves DIR/tls.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(root: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert, server key) under ``root``; reused when present."""
    d = root / "tls"
    ca, ca_key = root / "ca.pem", d / "ca.key"
    cert, key = d / "server.pem", d / "server.key"
    if ca.exists() and cert.exists() and key.exists():
        return ca, cert, key
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    _run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "30",
        "-subj",
        "/CN=pvesim test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    csr = d / "server.csr"
    _run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=pve1",
    )
    ext = d / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pve1\n"
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "30",
        "-extfile",
        str(ext),
    )
    for p in (key, ca_key):
        os.chmod(p, 0o600)
    return ca, cert, key
