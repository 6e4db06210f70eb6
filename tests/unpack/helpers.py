"""Helpers for the unpacker tests: layers as blobs, images in a Store, tree snapshots."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

from lxcri_core.media import Descriptor
from lxcri_core.store import Store
from lxcri_core.unpack import IdMap, LayerStats, apply_layer
from tests.support.images import Entry, Image, Layer, build, make_tar

NAME = "docker.io/library/t:latest"


def apply_entries(
    entries: list[Entry] | bytes,
    target: Path,
    compression: str = "none",
    *,
    diff_id: str | None = "auto",
    idmap: IdMap | None = None,
    overlay: bool = False,
) -> LayerStats:
    """Apply a layer made of ``entries`` (or raw tar bytes) onto ``target``."""
    tar = entries if isinstance(entries, bytes) else make_tar(entries)
    layer = Layer(tar, compression)
    blob, media_type = layer.blob()
    target.mkdir(parents=True, exist_ok=True)
    return apply_layer(
        io.BytesIO(blob),
        media_type,
        target,
        diff_id=layer.diff_id if diff_id == "auto" else diff_id,
        idmap=idmap,
        overlay=overlay,
    )


def store_image(root: Path, img: Image, name: str = NAME) -> Store:
    """An lxcri Store at ``root`` holding ``img`` tagged ``name``."""
    store = Store(root).init()
    built = build(img)
    for digest, data in built.blobs.items():
        store.put_bytes(data, digest)
    store.tag(name, Descriptor(built.media_type, built.manifest_digest, built.manifest_size))
    return store


def record(path: Path) -> dict[str, Any]:
    """What the peer comparison looks at for one filesystem entry."""
    st = os.lstat(path)
    mode = st.st_mode
    rec: dict[str, Any] = {
        "type": stat.S_IFMT(mode),
        "mode": stat.S_IMODE(mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    if stat.S_ISLNK(mode):
        rec["link"] = os.readlink(path)
    elif stat.S_ISREG(mode):
        rec["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        rec["nlink"] = st.st_nlink
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        rec["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    rec["xattrs"] = {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names)}
    return rec


def snapshot(root: Path) -> dict[str, dict[str, Any]]:
    """Every entry below ``root`` (not root itself) by relative path."""
    out: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = record(p)
    return out


def inode(path: Path) -> int:
    return os.lstat(path).st_ino
