"""Build small OCI images offline, in Python, for the tests.

Layers are tar streams written with tarfile, so a test can craft exactly the
entries it needs (whiteouts, hardlinks, hostile paths); the base layer is
busybox-static with a few applet links. ``write_layout`` produces an OCI
image layout that skopeo and umoci read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
APPLETS = [
    "sh",
    "ls",
    "cat",
    "echo",
    "env",
    "id",
    "pwd",
    "sleep",
    "httpd",
    "true",
    "false",
    "ps",
    "mkdir",
    "rm",
    "wget",
    "hostname",
    "stat",
    "readlink",
    "kill",
    "touch",
]
EPOCH = 1_700_000_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink, fifo, char."""

    path: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str = ""
    mtime: int = EPOCH
    xattrs: dict[str, str] = field(default_factory=dict)
    devmajor: int = 0
    devminor: int = 0


def make_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e.path)
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            ti.uname = ti.gname = ""
            if e.xattrs:
                ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            payload = None
            if e.kind == "file":
                ti.type, ti.size, payload = tarfile.REGTYPE, len(e.data), io.BytesIO(e.data)
            elif e.kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e.link
            elif e.kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e.link
            elif e.kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif e.kind == "char":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, e.devmajor, e.devminor
            else:
                raise ValueError(e.kind)
            tar.addfile(ti, payload)
    return buf.getvalue()


def busybox_entries() -> list[Entry]:
    bb = BUSYBOX.read_bytes()
    entries = [Entry(d, "dir", mode=0o755) for d in ("bin", "etc", "tmp", "root", "www", "var")]
    entries[2].mode = 0o1777
    entries.append(Entry("bin/busybox", data=bb, mode=0o755))
    entries += [Entry(f"bin/{a}", "symlink", link="busybox", mode=0o777) for a in APPLETS]
    entries.append(
        Entry(
            "etc/passwd",
            data=b"root:x:0:0:root:/root:/bin/sh\n"
            b"www:x:33:33:www:/www:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
    )
    entries.append(Entry("etc/group", data=b"root:x:0:\nwww:x:33:\nnogroup:x:65534:\n"))
    entries.append(Entry("www/index.html", data=b"<h1>hello from lxcri</h1>\n"))
    return entries


@dataclass
class Layer:
    tar: bytes
    compression: str = "gzip"  # gzip, none, zstd

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    def blob(self) -> tuple[bytes, str]:
        if self.compression == "gzip":
            return gzip.compress(self.tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        if self.compression == "zstd":
            import zstandard

            return (
                zstandard.ZstdCompressor().compress(self.tar),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            )
        return self.tar, "application/vnd.oci.image.layer.v1.tar"


@dataclass
class Image:
    layers: list[Layer]
    config: dict[str, Any] = field(default_factory=dict)
    architecture: str = "amd64"
    os: str = "linux"


def busybox_image(**config: Any) -> Image:
    cfg = {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo hello"],
        "Env": ["PATH=/bin"],
        "WorkingDir": "/",
    }
    cfg.update(config)
    return Image([Layer(make_tar(busybox_entries()))], cfg)


def multilayer_image() -> Image:
    """busybox, then a layer adding files and a hardlink, then one deleting them."""
    l2 = make_tar(
        [
            Entry("data", "dir", mode=0o755),
            Entry("data/keep.txt", data=b"keep\n"),
            Entry("data/gone.txt", data=b"to be deleted\n"),
            Entry("data/hard.txt", "hardlink", link="data/keep.txt"),
            Entry("opq", "dir", mode=0o755),
            Entry("opq/old.txt", data=b"old\n"),
        ]
    )
    l3 = make_tar(
        [
            Entry("data", "dir", mode=0o755),
            Entry("data/.wh.gone.txt"),
            Entry("opq", "dir", mode=0o755),
            Entry("opq/.wh..wh..opq"),
            Entry("opq/new.txt", data=b"new\n"),
        ]
    )
    img = busybox_image()
    img.layers += [Layer(l2), Layer(l3, "none")]
    return img


@dataclass
class Built:
    """What ``write_layout`` wrote: the manifest (or index) descriptor and digests."""

    manifest_digest: str
    manifest_size: int
    media_type: str
    blobs: dict[str, bytes]


def _put(blobs: dict[str, bytes], data: bytes) -> str:
    d = sha256(data)
    blobs[d] = data
    return d


def build_manifest(img: Image, blobs: dict[str, bytes]) -> tuple[str, int]:
    layer_descs = []
    for layer in img.layers:
        data, mt = layer.blob()
        layer_descs.append({"mediaType": mt, "digest": _put(blobs, data), "size": len(data)})
    config = {
        "architecture": img.architecture,
        "os": img.os,
        "created": "2024-01-01T00:00:00Z",
        "config": img.config,
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in img.layers]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "lxcri tests"} for _ in img.layers
        ],
    }
    cfg_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _put(blobs, cfg_bytes),
            "size": len(cfg_bytes),
        },
        "layers": layer_descs,
    }
    mbytes = json.dumps(manifest, sort_keys=True).encode()
    return _put(blobs, mbytes), len(mbytes)


def build(img: Image | list[Image]) -> Built:
    """Blobs for one image, or for an index over several (one per platform)."""
    blobs: dict[str, bytes] = {}
    if isinstance(img, Image):
        d, n = build_manifest(img, blobs)
        return Built(d, n, "application/vnd.oci.image.manifest.v1+json", blobs)
    mans = []
    for i in img:
        d, n = build_manifest(i, blobs)
        mans.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": d,
                "size": n,
                "platform": {"architecture": i.architecture, "os": i.os},
            }
        )
    idx = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": mans,
        },
        sort_keys=True,
    ).encode()
    return Built(_put(blobs, idx), len(idx), "application/vnd.oci.image.index.v1+json", blobs)


def write_layout(path: Path, img: Image | list[Image], tag: str = "latest") -> Built:
    """Write (or add to) an OCI image layout at ``path`` with ``tag`` naming the image."""
    built = build(img)
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for d, data in built.blobs.items():
        (path / "blobs" / "sha256" / d.split(":")[1]).write_bytes(data)
    index_path = path / "index.json"
    index: dict[str, Any] = (
        json.loads(index_path.read_text())
        if index_path.exists()
        else {"schemaVersion": 2, "manifests": []}
    )
    index["manifests"] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
    ]
    index["manifests"].append(
        {
            "mediaType": built.media_type,
            "digest": built.manifest_digest,
            "size": built.manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    index_path.write_text(json.dumps(index))
    return built


def host_arch() -> str:
    from lxcri_core.platforms import host_platform

    return host_platform().architecture
