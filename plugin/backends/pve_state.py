"""lxcri's own record of a Proxmox CT it created: ``<root>/pve/VMID/state.json``.

pct.conf holds what Proxmox needs; this holds what only lxcri uses: the image
reference and digest, the published ports, the address mode, the storage the
rootfs was built on, and the hookscript's findings (``published.json``: the
address ports are published to now). The directory is root's (0700): the
hookscript trusts what it reads here, never what the CT says about itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lxcri_pve.backends.pve_hookstate import HOOK_LOG as HOOK_LOG
from lxcri_pve.backends.pve_hookstate import PUBLISHED as PUBLISHED
from lxcri_pve.backends.pve_hookstate import STATE as STATE

from lxcri_core.errors import CorruptState
from lxcri_core.fsutil import atomic_write

CONSOLE_LOG = "console.log"
TAG = "lxcri"  # the tag that marks a CT as lxcri's: listing and every verb look for it


def split_tags(value: str) -> list[str]:
    """PVE's tag list: separated by ``;``, ``,`` or blanks."""
    return [t for t in re.split(r"[;,\s]+", value) if t]


def with_lxcri_tag(value: str | None) -> str:
    """``value`` as a tags string that keeps lxcri's tag first: a user's ``--tags`` (or
    ``--delete tags``) must never make a CT disappear from lxcri's view."""
    return ";".join(dict.fromkeys([TAG, *split_tags(value or "")]))


def tag_kept(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """A config change with lxcri's tag kept in (or put back for) ``tags``."""
    out = dict(changes)
    if "tags" in out:
        out["tags"] = with_lxcri_tag(out["tags"])
    return out


@dataclass(frozen=True)
class PortRecord:
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""

    def __str__(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        return f"{ip}{self.host_port}->{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class CtState:
    vmid: int
    name: str
    image: str
    image_digest: str
    storage: str
    storage_type: str
    rootfs_volume: str
    created: str
    #: ``dhcp``, ``manual`` or the static ``ADDR/PREFIX`` of net0
    ipv4: str = "dhcp"
    netdev: str = "eth0"
    bridge: str = ""
    ports: tuple[PortRecord, ...] = ()
    stop_timeout: int = 10
    nft_table: str = "lxcri"
    lxcpath: str = "/var/lib/lxc"
    restart: str = "no"
    max_retries: int = 0
    #: the healthcheck (test, interval, timeout, start_period, retries), None for none
    healthcheck: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ports"] = [asdict(p) for p in self.ports]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CtState:
        d = dict(d)
        d["ports"] = tuple(PortRecord(**p) for p in d.get("ports") or ())
        return cls(**d)


def state_dir(root: Path, vmid: int | str) -> Path:
    return root / "pve" / str(vmid)


def save_state(root: Path, st: CtState) -> None:
    d = state_dir(root, st.vmid)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    atomic_write(d / STATE, json.dumps(st.to_json(), indent=1).encode())


def load_state(root: Path, vmid: int | str) -> CtState | None:
    """The record of CT ``vmid``, None when lxcri did not create it."""
    p = state_dir(root, vmid) / STATE
    try:
        return CtState.from_json(json.loads(p.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        raise CorruptState(f"lxcri's record of CT {vmid} ({p}) is unreadable: {e}") from None


def published(root: Path, vmid: int | str) -> dict[str, Any]:
    """What the hookscript published (``{"ipv4": ADDR}``), {} when nothing."""
    try:
        data = json.loads((state_dir(root, vmid) / PUBLISHED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
