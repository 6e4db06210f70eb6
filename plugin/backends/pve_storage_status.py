"""A Proxmox node's storages and lxcri's volumes on each, for ``inspect-storage``.

pve-local reads ``pvesm status`` (one command), pve-api ``GET
/nodes/{node}/storage`` (one request); both say the same things, the CLI in
KiB columns (PVE::CLI::pvesm's print_status: ``Name Type Status Total Used
Available %``, sizes divided by 1024, ``disabled`` and ``N/A`` for a
disabled storage), the API in bytes. The volumes are the ``rootfs`` and
``mpN`` volume ids of lxcri's CTs, grouped by their storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lxcri_core.errors import BackendError

PVESM_STATUS = ["pvesm", "status"]
_MP = re.compile(r"mp\d+")
#: PVE's storage id rule (pve-storage-id): a letter, then letters, digits, -_.
_STORAGE_ID = re.compile(r"[a-z][a-z0-9\-_.]*", re.I)


@dataclass(frozen=True)
class StorageStatus:
    id: str
    type: str
    status: str  # active, inactive or disabled
    total: int | None  # bytes (KiB-exact from pvesm)
    used: int | None
    avail: int | None
    content: tuple[str, ...] = ()  # the API says it; pvesm status does not
    volumes: tuple[str, ...] = ()  # lxcri's volume ids on it
    node: str = ""  # the node it was read on (pve-api reads every online node)


def parse_pvesm_status(text: str) -> list[StorageStatus]:
    """``pvesm status``: a header line, then one storage a line (whitespace columns)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if lines[0].split()[:3] != ["Name", "Type", "Status"]:
        raise BackendError(f"unexpected `pvesm status` header {lines[0][:200]!r}")
    out = []
    for line in lines[1:]:
        f = line.split()
        if len(f) != 7 or not _STORAGE_ID.fullmatch(f[0]):
            raise BackendError(f"unexpected `pvesm status` line {line[:200]!r}")
        try:
            total, used, avail = (int(x) * 1024 for x in f[3:6])
        except ValueError:
            raise BackendError(f"unexpected `pvesm status` line {line[:200]!r}") from None
        out.append(StorageStatus(f[0], f[1], f[2], total, used, avail))
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def from_api(entries: Iterable[Mapping[str, Any]]) -> list[StorageStatus]:
    """``GET /nodes/{node}/storage``'s entries (bytes; ``active``/``enabled`` 0 or 1)."""
    out = []
    for e in entries:
        sid = str(e.get("storage", ""))
        if not _STORAGE_ID.fullmatch(sid):
            continue  # not a storage PVE could have: never shown
        status = (
            "disabled" if not e.get("enabled", 1) else "active" if e.get("active") else "inactive"
        )
        content = tuple(c for c in str(e.get("content") or "").split(",") if c)
        out.append(
            StorageStatus(
                sid,
                str(e.get("type", "")),
                status,
                _int(e.get("total")),
                _int(e.get("used")),
                _int(e.get("avail")),
                content,
            )
        )
    return sorted(out, key=lambda s: s.id)


def volume_ids(options: Mapping[str, str]) -> list[str]:
    """The storage volume ids of a CT config's ``rootfs`` and ``mpN`` (bind mounts,
    which are host paths, are no storage's)."""
    from lxcri_core.errors import SpecError
    from lxcri_core.spec.pve_config import parse_property_string

    out = []
    for key in sorted(k for k in options if k == "rootfs" or _MP.fullmatch(k)):
        try:
            vol = parse_property_string(str(options[key]), "volume").get("volume", "")
        except SpecError:  # a hand-edited value that does not parse: not a volume of ours
            continue
        if ":" in vol and not vol.startswith("/"):
            out.append(vol)
    return out


def with_volumes(
    storages: list[StorageStatus], confs: Mapping[int, Mapping[str, str]]
) -> list[StorageStatus]:
    """``storages`` with the volumes of the CTs ``confs`` (VMID -> main options) on each."""
    by_sid: dict[str, list[str]] = {}
    for _vmid, options in sorted(confs.items()):
        for vol in volume_ids(options):
            by_sid.setdefault(vol.split(":", 1)[0], []).append(vol)
    return [replace(s, volumes=tuple(by_sid.get(s.id, ()))) for s in storages]
