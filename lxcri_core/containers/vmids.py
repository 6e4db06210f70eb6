"""VMIDs on plain LXC: every container has a numeric id, as on Proxmox VE.

A VMID is allocated here, from ``FIRST_VMID`` (100, as Proxmox starts), the
lowest free one, under an exclusive lock (``containers/.locks/.vmids``), so
concurrent creates never share one. It is stored in the container's record
(the truth) and in an index ``containers/.vmids.json`` (``{"100": "web"}``)
that makes resolving ``lxcri start 100`` one small file read, and that holds
the VMID of a create in progress, before its record exists.

The index is a cache: when it is missing or unreadable it is rebuilt from the
records. An entry whose container has neither its state directory nor its
``.NAME.creating`` directory (create's work dir, renamed into place) is gone and
pruned when the next VMID is allocated; a removed container's VMID is free
again, as on Proxmox. Names cannot start with a dot, so the index and the lock
never clash with a container.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lxcri_core.errors import BackendError
from lxcri_core.fsutil import atomic_write, flocked

#: The first VMID handed out (Proxmox VE's lowest guest id).
FIRST_VMID = 100
#: The largest VMID Proxmox VE accepts.
MAX_VMID = 999_999_999
INDEX = ".vmids.json"


def _base(root: Path) -> Path:
    return root / "containers"


def _lock(root: Path) -> Any:
    return flocked(_base(root) / ".locks" / ".vmids")


def read_index(root: Path) -> dict[int, str]:
    """VMID -> name, without the lock (a reader sees the old or the new file: atomic_write)."""
    try:
        doc = json.loads((_base(root) / INDEX).read_text())
    except (OSError, ValueError):
        return _rebuild(root)
    if not isinstance(doc, dict):
        return _rebuild(root)
    out: dict[int, str] = {}
    for k, v in doc.items():
        if isinstance(k, str) and k.isdigit() and isinstance(v, str):
            out[int(k)] = v
    return out


def _rebuild(root: Path) -> dict[int, str]:
    """The index from the records themselves (only their ``vmid`` key is read)."""
    out: dict[int, str] = {}
    base = _base(root)
    if not base.is_dir():
        return out
    for d in base.iterdir():
        try:
            doc = json.loads((d / "lxcri.json").read_text())
        except (OSError, ValueError):
            continue
        vmid = doc.get("vmid") if isinstance(doc, dict) else None
        if isinstance(vmid, int) and not isinstance(vmid, bool) and vmid >= FIRST_VMID:
            out.setdefault(vmid, d.name)
    return out


def _save(root: Path, index: dict[int, str]) -> None:
    data = json.dumps({str(k): v for k, v in sorted(index.items())}).encode()
    atomic_write(_base(root) / INDEX, data, mode=0o600)


def _exists(root: Path, name: str) -> bool:
    base = _base(root)
    return os.path.lexists(base / name) or os.path.lexists(base / f".{name}.creating")


def allocate(root: Path, name: str, wanted: int | None = None) -> int:
    """The VMID of container ``name``: its own if it has one, ``wanted`` if free, else
    the lowest free one from ``FIRST_VMID``."""
    _base(root).mkdir(parents=True, exist_ok=True)
    with _lock(root):
        index = {k: v for k, v in read_index(root).items() if _exists(root, v)}
        mine = [k for k, v in index.items() if v == name]
        if mine and wanted in (None, mine[0]):
            return mine[0]
        for k in mine:
            del index[k]
        if wanted is not None:
            if not FIRST_VMID <= wanted <= MAX_VMID:
                raise BackendError(
                    f"VMID {wanted} is out of range: give {FIRST_VMID} to {MAX_VMID}"
                )
            if wanted in index:
                raise BackendError(f"VMID {wanted} is taken by container {index[wanted]}")
            vmid = wanted
        else:
            vmid = FIRST_VMID
            while vmid in index:
                vmid += 1
        index[vmid] = name
        _save(root, index)
        return vmid


def release(root: Path, name: str) -> None:
    """Forget ``name``'s VMID (its container is removed)."""
    if not (_base(root) / INDEX).exists():
        return
    with _lock(root):
        index = read_index(root)
        kept = {k: v for k, v in index.items() if v != name}
        if kept != index:
            _save(root, kept)


def name_of(root: Path, vmid: int) -> str | None:
    """The name of the container with ``vmid``, or None."""
    name = read_index(root).get(vmid)
    return name if name is not None and _exists(root, name) else None
