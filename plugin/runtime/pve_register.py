"""``--pve-register``: a container containerd runs also appears as a Proxmox CT.

Asked for by the annotation ``org.lxcri.pve-register=true`` (the drop-in of
``lxcri containerd-config --pve-register`` lets pods pass it) or the
runtime's global ``--pve-register`` flag. ``create`` allocates a VMID on the
pve-local backend (``pvesh get /cluster/nextid``, the config taken under
PVE's lock as ``pct create`` does) and writes ``VMID.conf`` describing the
container; ``delete`` removes that config again, and only a config that
still names this container (a VMID reused meanwhile is left alone). The CT
carries the ``containerd`` tag, not lxcri's: lxcri's own commands do not
take it for one of their containers; its ``lock: mounted`` keeps Proxmox
from starting a second copy of the rootfs containerd runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lxcri_core.errors import BackendError
from lxcri_core.runtime.containerd import PVE_ANNOTATION as ANNOTATION

VMID_FILE = "pve-vmid"
TAG = "containerd"


def wanted(bundle_dir: str) -> bool:
    try:
        doc = json.loads(Path(bundle_dir, "config.json").read_text())
    except (OSError, ValueError):
        return False  # create reports the bundle's problem itself
    ann = doc.get("annotations") if isinstance(doc, dict) else None
    return isinstance(ann, dict) and ann.get(ANNOTATION) in ("true", "1", "yes")


def _backend() -> Any:
    from lxcri_pve.backends.pve_local import PveLocalBackend

    from lxcri_core.config import load_config

    return PveLocalBackend(load_config())


def marker(root: str, cid: str) -> str:
    return f"containerd container {cid} (lxcri-runtime --root {root})"


def render(root: str, cid: str, state_doc: dict[str, Any]) -> str:
    """The CT's config: what Proxmox shows of the container, nothing it would start."""
    hostname = "".join(c if c.isalnum() or c == "-" else "-" for c in cid)[:63].strip("-")
    desc = marker(root, cid).replace("\n", " ")
    return (
        f"#{desc}\n"
        "arch: amd64\n"
        f"hostname: {hostname or 'containerd'}\n"
        "lock: mounted\n"
        "ostype: unmanaged\n"
        f"rootfs: {state_doc['rootfs']}\n"
        f"tags: {TAG}\n"
    )


def register(root: str, cid: str) -> int:
    """A VMID and its config for the container ``create`` just made; the VMID."""
    from lxcri_core.runtime import state

    doc = json.loads(state.load(root, cid).to_json())
    if "\n" in doc["rootfs"]:
        raise BackendError(f"rootfs {doc['rootfs']!r} cannot be written to a CT config")
    be = _backend()
    vmid: int = be._reserve(None)
    try:
        with be._lock(vmid):
            be._write_conf(vmid, render(root, cid, doc))
        Path(state.container_dir(root, cid), VMID_FILE).write_text(str(vmid))
    except BaseException:
        be._drop_conf(vmid)
        raise
    return vmid


def registered(root: str, cid: str) -> int | None:
    from lxcri_core.runtime import state

    try:
        text = Path(state.container_dir(root, cid), VMID_FILE).read_text()
    except (OSError, Exception):
        return None
    return int(text) if text.strip().isdigit() else None


def unregister(root: str, cid: str, vmid: int) -> None:
    """Remove CT ``vmid``'s config if it is still this container's."""
    be = _backend()
    with be._lock(vmid):
        path = be.conf_path(vmid)
        try:
            first = path.read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return
        if first == f"#{marker(root, cid)}":
            os.unlink(path)
