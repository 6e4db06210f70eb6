"""``mounts`` and ``linux.devices`` of config.json -> LXC mount entries.

LXC mounts proc, sysfs and cgroup itself (``lxc.mount.auto``), and /dev and
/dev/pts (autodev, its devpts): those entries set the auto mode. Every other
mount becomes an ``lxc.mount.entry`` whose target outside /dev the runtime
creates in the rootfs first (``BindTarget``, resolved inside it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from lxcri_core.runtime.fields import bad, integer, obj, text, texts, unsupported
from lxcri_core.spec.lxc_config import fstab_escape

#: Mount options LXC's mount entries understand (with ``mode=``-style data passed on).
MOUNT_FLAGS = frozenset(
    (
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    )
)
#: Filesystem data options passed through as they are (``size=64m``, ``mode=1777``...).
_DATA_OPT = re.compile(r"^[a-z_]{1,32}=[A-Za-z0-9_.:,+-]{0,64}\Z")
_DATA_KEYS = frozenset(
    ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "ptmxmode", "newinstance")
)
#: What LXC does itself at these targets (lxc.mount.auto, lxc.autodev, its devpts).
_LXC_MOUNTS = {"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts"}


@dataclass(frozen=True)
class BindTarget:
    """A mount whose target the runtime creates in the rootfs before LXC mounts it."""

    target: str
    kind: str  # dir | file


def _mount_opts(opts: tuple[str, ...], path: str) -> list[str]:
    out = []
    for i, o in enumerate(opts):
        if (
            o in MOUNT_FLAGS
            or (_DATA_OPT.match(o) and o.split("=", 1)[0] in _DATA_KEYS)
            or o == "newinstance"
        ):
            out.append(o)
        else:
            raise bad(f"{path}[{i}]", f"mount option {o!r} is not one LXC passes on")
    return out


def translate_mounts(entries: list[Any]) -> tuple[str, list[tuple[int, str]], list[BindTarget]]:
    """(lxc.mount.auto, mount entries with a ``{target}`` slot, the targets to create)."""
    # proc read-write: the config's readonlyPaths say what is read-only (runc's way)
    proc, sys_, cgroup = "proc:rw", "sys:ro", "cgroup:ro"
    lines: list[tuple[int, str]] = []
    targets: list[BindTarget] = []
    for i, m in enumerate(entries):
        m = obj(m, f"mounts[{i}]")
        dest = text(m.get("destination", ""), f"mounts[{i}].destination")
        if not dest.startswith("/") or ".." in dest.split("/"):
            raise bad(f"mounts[{i}].destination", f"{dest!r} is not an absolute clean path")
        dest = "/" + "/".join(p for p in dest.split("/") if p)
        kind = text(m.get("type", "") or "", f"mounts[{i}].type")
        source = text(m.get("source", "") or "", f"mounts[{i}].source")
        opts = _mount_opts(texts(m.get("options"), f"mounts[{i}].options"), f"mounts[{i}].options")
        unsupported(m, ("uidMappings", "gidMappings"), f"mounts[{i}].", "LXC cannot idmap it")
        ro = "ro" in opts
        bind = kind == "bind" or "bind" in opts or "rbind" in opts
        if _LXC_MOUNTS.get(dest) == kind:
            continue  # LXC mounts it itself (lxc.mount.auto proc, autodev, its devpts)
        if dest == "/sys" and kind == "sysfs":
            sys_ = "sys:ro" if ro else "sys:rw"
            continue
        if dest == "/sys/fs/cgroup" and kind == "cgroup":
            cgroup = "cgroup:ro" if ro else "cgroup:mixed"
            continue
        if bind:
            if not source.startswith("/"):
                raise bad(f"mounts[{i}].source", "a bind mount needs an absolute source")
            if not os.path.exists(source):
                raise bad(f"mounts[{i}].source", f"{source} does not exist")
            if "bind" not in opts and "rbind" not in opts:
                opts.insert(0, "bind")
            tkind = "dir" if os.path.isdir(source) else "file"
            fs = "none"
        else:
            if not kind:
                raise bad(f"mounts[{i}].type", "is required for a mount that is not a bind")
            if not re.match(r"^[a-z0-9_.]{1,32}\Z", kind):
                raise bad(f"mounts[{i}].type", f"{kind!r} is not a filesystem type")
            source = source or kind
            tkind, fs = "dir", kind
        if dest.startswith("/dev/"):
            # inside LXC's own /dev tmpfs (autodev): made at start, nothing of the image in the way
            target = fstab_escape(dest.lstrip("/"))
            opts.append(f"create={tkind}")
            lines.append((-1, f"{fstab_escape(source)} {target} {fs} {','.join(opts)} 0 0"))
            continue
        targets.append(BindTarget(dest, tkind))
        lines.append(
            (len(targets) - 1, f"{fstab_escape(source)} {{target}} {fs} {','.join(opts)} 0 0")
        )
    return f"{proc} {sys_} {cgroup}", lines, targets


#: Device nodes LXC's autodev makes anyway (c major:minor).
_AUTODEV = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


def translate_devices(entries: list[Any]) -> tuple[list[str], list[BindTarget]]:
    """``linux.devices``: LXC cannot mknod a node of the config's; it binds the host's."""
    import stat

    lines = []
    for i, d in enumerate(entries):
        d = obj(d, f"linux.devices[{i}]")
        path = text(d.get("path", ""), f"linux.devices[{i}].path")
        kind = d.get("type")
        major = integer(d.get("major", -1), f"linux.devices[{i}].major", -1)
        minor = integer(d.get("minor", -1), f"linux.devices[{i}].minor", -1)
        if kind == "c" and _AUTODEV.get(path) == (major, minor):
            continue
        try:
            st = os.stat(path)
        except OSError:
            st = None
        want = stat.S_ISCHR if kind in ("c", "u") else stat.S_ISBLK
        if (
            st is None
            or not want(st.st_mode)
            or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (major, minor)
        ):
            raise bad(
                f"linux.devices[{i}]",
                f"LXC cannot create {path}; it can only bind the host's node of that type "
                "and number at the same path",
            )
        mode = d.get("fileMode")
        owner = (d.get("uid", st.st_uid), d.get("gid", st.st_gid))
        if owner != (st.st_uid, st.st_gid) or (
            mode is not None and mode & 0o7777 != st.st_mode & 0o7777
        ):
            raise bad(
                f"linux.devices[{i}]",
                "the host node's mode or owner differs, and a bind mount keeps them",
            )
        lines.append(
            f"{fstab_escape(path)} {fstab_escape(path.lstrip('/'))} none bind,create=file 0 0"
        )
    return lines, []
