"""The bundled demo image, built offline from busybox-static.

A one-layer OCI image whose entrypoint is busybox httpd serving a small page
on port 80; ``make demo`` builds it, imports it and (once the LXC backend is
in place) runs it. Nothing is downloaded: the only input is /bin/busybox.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from lxcri_core.platforms import host_platform

DEMO_REF = "localhost/lxcri-demo:latest"
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ls", "cat", "echo", "env", "id", "httpd", "sleep", "ps", "wget", "true")
PAGE = b"<!doctype html><title>lxcri demo</title><h1>Hello from an lxcri container</h1>\n"
MTIME = 1_700_000_000


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(busybox: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, MTIME, link
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data else None)

        for d in ("bin", "etc", "www", "tmp"):
            add(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in APPLETS:
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n")
        add("www/index.html", tarfile.REGTYPE, 0o644, PAGE)
    return buf.getvalue()


def build_demo_layout(dest: Path, busybox: Path = BUSYBOX) -> str:
    """Write the demo image as an OCI image layout at ``dest``; return its manifest digest."""
    tar = _layer(busybox)
    blob = gzip.compress(tar, mtime=0)
    config = json.dumps(
        {
            "architecture": host_platform().architecture,
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/httpd", "-f", "-v", "-p", "80", "-h", "/www"],
                "Env": ["PATH=/bin"],
                "ExposedPorts": {"80/tcp": {}},
                "WorkingDir": "/www",
                "Labels": {"org.opencontainers.image.title": "lxcri demo"},
            },
            "rootfs": {"type": "layers", "diff_ids": [_sha(tar)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(blob),
                    "size": len(blob),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in (blob, config, manifest):
        (blobs / _sha(data).split(":")[1]).write_bytes(data)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))
    return _sha(manifest)
