"""Create a CT rootfs from an OCI archive the way PVE 9.1's create path does.

PVE decides "OCI" only for ``*.tar`` templates whose listing holds
``oci-layout``, ``index.json`` and ``blobs/`` (API2/LXC.pm), extracts the
image inside the CT's user namespace (so an unprivileged CT's files end up
owned by 100000+id) and turns the image config into CT config: Entrypoint+Cmd
become the entrypoint (arguments double-quoted), WorkingDir ``lxc.init.cwd``,
Env ``lxc.environment.runtime`` lines, StopSignal ``lxc.signal.halt``
(default SIGTERM), User ``lxc.init.uid``/``lxc.init.gid``; an entrypoint other
than /sbin/init sets ``cmode: console``.

Here umoci (a real peer tool) unpacks the image as root, preserving ids, and
the ids are then shifted by the CT's map with lchown (never following links).
Only the three kinds of member a layout holds are read from the archive, so a
hostile archive cannot write outside the scratch directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ID_SHIFT = 100000
ID_COUNT = 65536


class OciError(Exception):
    pass


def is_oci_archive(path: Path) -> bool:
    """PVE's test: a ``*.tar`` template holding an OCI layout."""
    return path.name.endswith(".tar") and has_layout(path)


def has_layout(path: Path) -> bool:
    names = set()
    blobs = False
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                names.add(m.name)
                blobs = blobs or m.name.startswith("blobs/")
    except (tarfile.TarError, OSError):
        return False
    return "oci-layout" in names and "index.json" in names and blobs


def _extract_layout(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:") as tf:
        for m in tf:
            name = m.name
            ok = name in ("oci-layout", "index.json") or re.fullmatch(
                r"blobs/sha256/[0-9a-f]{64}", name
            )
            if not ok or not m.isfile():
                continue
            src = tf.extractfile(m)
            assert src is not None
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)


def _blob(layout: Path, digest: str) -> bytes:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexd):
        raise OciError(f"unsupported digest '{digest}'")
    return (layout / "blobs" / "sha256" / hexd).read_bytes()


def image_config(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(first OCI manifest descriptor in index.json, image config) — PVE takes the first."""
    index = json.loads((layout / "index.json").read_text())
    desc = next((d for d in index.get("manifests", []) if d.get("mediaType") == OCI_MANIFEST), None)
    if desc is None:
        raise OciError("no OCI image manifest found in index.json")
    manifest = json.loads(_blob(layout, desc["digest"]))
    cfg_desc = manifest.get("config", {})
    if cfg_desc.get("mediaType") != OCI_CONFIG:
        raise OciError(f"unsupported config media type '{cfg_desc.get('mediaType')}'")
    config = json.loads(_blob(layout, cfg_desc["digest"]))
    return desc, config


OCI_LAYERS = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
}


def _put_blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _only_oci_layers(layout: Path, desc: dict[str, Any]) -> dict[str, Any]:
    """Drop layers of other media types (Docker's) as PVE's OCI code silently does.

    The manifest and config (its diff_ids) are rewritten in the private copy so
    umoci unpacks exactly the layers PVE would; the rootfs then lacks what the
    dropped layers held, which is how such an archive fails on a real node.
    """
    manifest = json.loads(_blob(layout, desc["digest"]))
    layers = manifest.get("layers") or []
    keep = [i for i, layer in enumerate(layers) if layer.get("mediaType") in OCI_LAYERS]
    if len(keep) == len(layers):
        return desc
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    config.setdefault("rootfs", {})["diff_ids"] = [diff_ids[i] for i in keep if i < len(diff_ids)]
    cfg_data = json.dumps(config).encode()
    manifest["config"] = {
        **manifest["config"],
        "digest": _put_blob(layout, cfg_data),
        "size": len(cfg_data),
    }
    manifest["layers"] = [layers[i] for i in keep]
    data = json.dumps(manifest).encode()
    return {**desc, "digest": _put_blob(layout, data), "size": len(data)}


def shift_ids(root: Path, offset: int = ID_SHIFT) -> None:
    """chown every inode under ``root`` by ``offset`` as an id-mapped extraction would."""

    def one(path: str, st: os.stat_result) -> None:
        if st.st_uid >= ID_COUNT or st.st_gid >= ID_COUNT:
            raise OciError(f"id of '{path}' is outside the container's id map")
        os.lchown(path, st.st_uid + offset, st.st_gid + offset)
        # chown clears setuid/setgid; put the mode back (symlinks have none to restore).
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(path, stat.S_IMODE(st.st_mode))

    one(str(root), os.lstat(root))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            one(p, os.lstat(p))


def extract(archive: Path, rootdir: Path, scratch: Path, unprivileged: bool) -> dict[str, Any]:
    """Unpack the image into ``rootdir`` (an empty, existing dir); return the image config."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        layout = Path(tmp) / "layout"
        layout.mkdir()
        _extract_layout(archive, layout)
        desc, config = image_config(layout)
        desc = _only_oci_layers(layout, desc)
        # umoci needs a tag: point a private index at the chosen manifest.
        desc = dict(desc)
        desc["annotations"] = {"org.opencontainers.image.ref.name": "pvesim"}
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
        # Unpack inside the volume itself, so moving the tree up is a rename on one
        # filesystem (a zfs dataset is its own) and keeps owners, modes and links.
        bundle = rootdir / f".pvesim-unpack-{secrets.token_hex(8)}"
        try:
            res = subprocess.run(
                ["umoci", "unpack", "--image", f"{layout}:pvesim", str(bundle)],
                capture_output=True,
                text=True,
                check=False,
            )
            if res.returncode != 0:
                raise OciError(f"unpacking the OCI image failed: {res.stderr.strip()}")
            src = bundle / "rootfs"
            entries = os.listdir(src)
            if bundle.name in entries:
                raise OciError(f"the image holds '{bundle.name}'")
            for entry in entries:
                os.rename(src / entry, rootdir / entry)
            st = os.lstat(src)
            os.chown(rootdir, st.st_uid, st.st_gid)
            os.chmod(rootdir, stat.S_IMODE(st.st_mode))
        finally:
            shutil.rmtree(bundle, ignore_errors=True)
    if unprivileged:
        shift_ids(rootdir)
    cfg: dict[str, Any] = config.get("config") or {}
    return cfg


def init_cmd(cfg: dict[str, Any]) -> str | None:
    """Entrypoint + Cmd as PVE's create path joins them: first word bare, the rest quoted."""
    words = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not words:
        return None
    first, rest = words[0], words[1:]
    quoted = ['"' + w.replace('"', '\\"') + '"' for w in rest]
    return " ".join([first, *quoted])


def _lookup(file: Path, name: str) -> tuple[int, int] | None:
    """(field 3, field 4) of ``name``'s line; group files give (gid, -1)."""
    try:
        lines = file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name:
            try:
                second = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else -1
                return int(parts[2]), second
            except ValueError:
                return None
    return None


def user_ids(rootdir: Path, user: str) -> tuple[int, int] | None:
    """The image USER as (uid, gid), looked up in the image's own passwd/group files."""
    if not user:
        return None
    name, _, group = user.partition(":")
    if name.isdigit():
        uid, gid = int(name), 0
    else:
        # Read through the rootfs without following its symlinks out of it.
        passwd = rootdir / "etc" / "passwd"
        if passwd.is_symlink():
            return None
        found = _lookup(passwd, name)
        if found is None:
            raise OciError(f"user '{name}' not found in the image's /etc/passwd")
        uid, gid = found
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            grp = rootdir / "etc" / "group"
            g = None if grp.is_symlink() else _lookup(grp, group)
            if g is None:
                raise OciError(f"group '{group}' not found in the image's /etc/group")
            gid = g[0]
    return uid, gid
