"""What the Proxmox hookscript reads at every phase, read cheaply.

PVE runs the hookscript four times per start/stop cycle, a new interpreter
each time, so what it imports is paid every time: no dataclasses (``pve_state``'s
CtState costs ~15 ms of imports), no pathlib, no config loading on the common
paths. Here:

- ``HookState``: the fields of lxcri's record (``state.json``, written by
  ``pve_state.save_state``) that the hookscript uses, read without CtState. A
  record that is not plainly well-formed (a key missing or unknown, a port
  entry of another shape) is handed to ``pve_state.load_state``, whose
  CorruptState says why: the same check, the same message, as before.
- ``private_dir``: what makes a directory of CT volumes private (the one
  implementation; ``pve_storage.private_parent`` calls it).
- The pre-start's memo of which directories those are (``private.json``):
  working them out reads lxcri's config, the CT's pct.conf and storage.cfg
  (~60 ms of imports), yet they change only when one of those does. The memo
  holds those inputs exactly (the texts of pct.conf and storage.cfg, the
  config file's identity, the environment that names them, the host name) and
  is used only while every one is unchanged; volumes on a zfspool (whose
  directory is a dataset's mountpoint, asked of zfs) are never memoised.

The state directory is root's (0700): this trusts what it reads there, as
the hookscript always has.
"""

from __future__ import annotations

import json
import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from typing import Any

    from lxcri_pve.backends.pve_state import CtState

STATE = "state.json"
PUBLISHED = "published.json"
HOOK_LOG = "hooks.log"
PRIVATE_MEMO = "private.json"
STOP_REQUESTED = "stop.requested"

#: CtState's fields without and with a default (tests/pve checks they match it).
STATE_REQUIRED = ("vmid", "name", "image", "image_digest", "storage", "storage_type",
                  "rootfs_volume", "created")  # fmt: skip
STATE_OPTIONAL = ("ipv4", "netdev", "bridge", "ports", "stop_timeout", "nft_table", "lxcpath",
                  "restart", "max_retries", "healthcheck", "labels")  # fmt: skip
PORT_REQUIRED = ("host_port", "container_port")
PORT_OPTIONAL = ("proto", "host_ip")
#: What decides where pct.conf and storage.cfg are (lxcri_core.config, PveLocalBackend).
CONFIG_ENV = ("LXCRI_CONFIG", "LXCRI_PVE_ROOT", "LXCRI_PVE_NODE")
DEFAULT_CONFIG = "/etc/lxcri/config.yaml"


class HookPort:
    """A published port of the record (pve_state.PortRecord's fields and text)."""

    __slots__ = ("container_port", "host_ip", "host_port", "proto")

    def __init__(self, host_port: int, container_port: int, proto: str = "tcp", host_ip: str = ""):
        self.host_port, self.container_port = host_port, container_port
        self.proto, self.host_ip = proto, host_ip

    def __str__(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        return f"{ip}{self.host_port}->{self.container_port}/{self.proto}"


class HookState:
    """The record's fields the hookscript's phases use (CtState's names and defaults)."""

    __slots__ = ("bridge", "healthcheck", "ipv4", "lxcpath", "netdev", "nft_table", "ports",
                 "restart", "vmid")  # fmt: skip

    def __init__(self, d: dict[str, Any]) -> None:
        self.vmid: int = d["vmid"]
        self.ipv4: str = d.get("ipv4", "dhcp")
        self.netdev: str = d.get("netdev", "eth0")
        self.bridge: str = d.get("bridge", "")
        self.nft_table: str = d.get("nft_table", "lxcri")
        self.lxcpath: str = d.get("lxcpath", "/var/lib/lxc")
        self.restart: str = d.get("restart", "no")
        self.healthcheck: dict[str, Any] | None = d.get("healthcheck")
        self.ports: tuple[HookPort, ...] = tuple(HookPort(**p) for p in d.get("ports") or ())

    @classmethod
    def of(cls, st: CtState) -> HookState:
        return cls(st.to_json())


def state_dir(root: str, vmid: int | str) -> str:
    return os.path.join(root, "pve", str(vmid))


def _well_formed(d: object) -> bool:
    if not isinstance(d, dict) or not set(STATE_REQUIRED) <= d.keys():
        return False
    if not d.keys() <= {*STATE_REQUIRED, *STATE_OPTIONAL}:
        return False
    ports = d.get("ports") or []
    return isinstance(ports, list) and all(
        isinstance(p, dict) and set(PORT_REQUIRED) <= p.keys() <= {*PORT_REQUIRED, *PORT_OPTIONAL}
        for p in ports
    )


def load_hook_state(root: str, vmid: int | str) -> HookState | None:
    """The record of CT ``vmid`` (None: not lxcri's); CorruptState when unreadable."""
    try:
        with open(os.path.join(state_dir(root, vmid), STATE)) as f:
            d = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        d = None
    if _well_formed(d):
        return HookState(d)
    from pathlib import Path

    from lxcri_pve.backends.pve_state import load_state

    full = load_state(Path(root), vmid)  # raises CorruptState, naming the fault
    return None if full is None else HookState.of(full)


def private_dir(path: str, gid: int | None) -> None:
    """Make ``path``, a directory holding CT volumes, passable by root only (``gid``
    None: 0700 root:root) or also by the mapped root group (0710 root:``gid``)."""
    from lxcri_core.errors import BackendError

    mode, group = (0o700, 0) if gid is None else (0o710, gid)
    try:
        info = os.lstat(path)
    except OSError as e:
        raise BackendError(f"cannot make {path} private: {e.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise BackendError(f"{path} holds CT volumes but is not a directory")
    if (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) != (mode, 0, group):
        os.chown(path, 0, group)  # the owner first: a chown clears no bits of a directory
        os.chmod(path, mode)


def discard(path: str) -> None:
    """Remove ``path`` if it is there (``Path.unlink(missing_ok=True)``, without pathlib)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def memo_key(conf: str, storage_cfg: str) -> dict[str, Any]:
    """Everything the directories of a CT's volumes follow from, read now."""
    env = {k: os.environ.get(k) for k in CONFIG_ENV}
    cfg_file = os.environ.get("LXCRI_CONFIG") or DEFAULT_CONFIG
    try:
        st = os.stat(cfg_file)
        cfg_id: list[int] | None = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size]
    except OSError:
        cfg_id = None
    return {
        "env": env,
        "config": cfg_id,
        "host": os.uname().nodename,
        "conf_path": conf,
        "conf": _read(conf),
        "storage_path": storage_cfg,
        "storage": _read(storage_cfg),
    }


def memo_dirs(sdir: str) -> list[tuple[str, int | None]] | None:
    """The memoised directories, None when there is no memo or any input changed."""
    try:
        with open(os.path.join(sdir, PRIVATE_MEMO)) as f:
            memo = json.load(f)
        key = memo["key"]
        if memo_key(key["conf_path"], key["storage_path"]) != key:
            return None
        return [(str(p), None if g is None else int(g)) for p, g in memo["dirs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_memo(sdir: str, key: dict[str, Any], dirs: list[tuple[str, int | None]]) -> None:
    from lxcri_core.fsutil import atomic_write

    doc = {"key": key, "dirs": [[p, g] for p, g in dirs]}
    atomic_write(os.path.join(sdir, PRIVATE_MEMO), json.dumps(doc).encode())
