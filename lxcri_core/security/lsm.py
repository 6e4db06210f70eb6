"""Linux security modules: which are active, and AppArmor / SELinux for one container.

The active list comes from securityfs (``/sys/kernel/security/lsm``) when it is
mounted, else from the ``lsm_list_modules`` system call (Linux 6.8+), which
needs no mount: hosts often leave securityfs unmounted (this development
machine does). AppArmor and SELinux are each ``available`` only when the kernel
runs them; a container's profile or context is still written to its config
(LXC ignores it there, as Proxmox does), and shown as configured.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass

from lxcri_core.fsutil import read_text

#: ``<linux/lsm.h>`` LSM ids -> the names securityfs uses.
LSM_IDS: dict[int, str] = {
    100: "capability",
    101: "selinux",
    102: "smack",
    103: "tomoyo",
    104: "apparmor",
    105: "yama",
    106: "loadpin",
    107: "safesetid",
    108: "lockdown",
    109: "bpf",
    110: "landlock",
    111: "ima",
    112: "evm",
    113: "ipe",
}
LSM_FILE = "/sys/kernel/security/lsm"
#: ``lsm_list_modules`` in the generic syscall table (x86_64 and arm64 share it)
_SYS_LSM_LIST_MODULES = {"x86_64": 461, "aarch64": 461}

#: Proxmox's default: LXC generates a per-container profile (equivalent to the
#: old ``lxc-container-default-cgns``).
APPARMOR_DEFAULT = "generated"
#: Profiles ``--security-opt apparmor=`` takes without a warning.
APPARMOR_KNOWN = ("generated", "lxc-container-default-cgns", "lxc-container-default")
APPARMOR_UNCONFINED = "unconfined"

Reader = Callable[[str], str | None]


def parse_lsm_list(text: str) -> tuple[str, ...]:
    """securityfs ``lsm`` (``lockdown,capability,landlock,bpf``) -> the names, in order."""
    return tuple(n for n in text.strip().split(",") if n)


def decode_lsm_ids(ids: list[int] | tuple[int, ...]) -> tuple[str, ...]:
    """``lsm_list_modules`` ids -> names; an id newer than this table as ``lsm<N>``."""
    return tuple(LSM_IDS.get(i, f"lsm{i}") for i in ids if i)


def _syscall_lsm_ids() -> list[int] | None:
    nr = _SYS_LSM_LIST_MODULES.get(platform.machine())
    if nr is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    buf = (ctypes.c_uint64 * 32)()
    size = ctypes.c_uint32(ctypes.sizeof(buf))
    count = libc.syscall(nr, buf, ctypes.byref(size), 0)
    if count < 0 or count > 32:
        return None  # ENOSYS on kernels before 6.8
    return [int(buf[i]) for i in range(count)]


def active_lsms(read: Reader = read_text) -> tuple[tuple[str, ...], str]:
    """The active LSMs and where they were read (``securityfs``, ``syscall``, or
    ``unknown`` with an empty list)."""
    text = read(LSM_FILE)
    if text is not None:
        return parse_lsm_list(text), "securityfs"
    ids = _syscall_lsm_ids()
    if ids is not None:
        return decode_lsm_ids(ids), "syscall"
    return (), "unknown"


@dataclass(frozen=True)
class LsmState:
    """AppArmor or SELinux on this host: ``enabled``/``enforcing``/``permissive`` or
    ``unavailable``."""

    name: str
    state: str
    detail: str = ""


def apparmor_state(read: Reader = read_text, lsms: tuple[str, ...] = ()) -> LsmState:
    enabled = read("/sys/module/apparmor/parameters/enabled")
    if enabled is None and "apparmor" not in lsms:
        return LsmState("apparmor", "unavailable", "the kernel runs no AppArmor")
    if enabled is not None and enabled.strip() != "Y":
        return LsmState("apparmor", "unavailable", "AppArmor is built in but disabled")
    profiles = read("/sys/kernel/security/apparmor/profiles")
    detail = f"{len(profiles.splitlines())} profiles loaded" if profiles is not None else ""
    return LsmState("apparmor", "enabled", detail)


def selinux_state(read: Reader = read_text, lsms: tuple[str, ...] = ()) -> LsmState:
    enforce = read("/sys/fs/selinux/enforce")
    if enforce is None:
        if "selinux" in lsms:
            return LsmState("selinux", "enabled", "selinuxfs is not mounted")
        return LsmState("selinux", "unavailable", "the kernel runs no SELinux")
    return LsmState("selinux", "enforcing" if enforce.strip() == "1" else "permissive")


def parse_attr_current(text: str | None) -> str:
    """``/proc/PID/attr/current`` (``lxc-100_</var/lib/lxc> (enforce)``) -> the label;
    ``""`` when unreadable or empty."""
    if text is None:
        return ""
    return text.strip("\x00\n ")


def process_label(pid: int, lsm: str, read: Reader = read_text) -> str:
    """The AppArmor profile or SELinux context ``pid`` runs under; ``""`` if unknown."""
    for path in (f"/proc/{pid}/attr/{lsm}/current", f"/proc/{pid}/attr/current"):
        if os.path.exists(path):
            label = parse_attr_current(read(path))
            if label:
                return label
    return ""


# -- the user's choice: --security-opt apparmor=... and label=... -------------------------------

#: A profile name that cannot break out of its config line (no space, newline or ``=``).
_APPARMOR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,254}\Z")
#: One SELinux context field: user, role, type or an MLS level (``s0:c1,c2``).
_SELINUX_PART = re.compile(r"^[A-Za-z0-9_.:,-]{1,255}\Z")
#: LXC's example context for a container; ``label=type:...`` and friends replace a field.
SELINUX_DEFAULT = ("system_u", "system_r", "lxc_t", "s0")
_LABEL_FIELDS = ("user", "role", "type", "level")


def parse_apparmor_opt(value: str) -> str:
    """``apparmor=PROFILE`` -> the profile name, checked."""
    from lxcri_core.errors import SpecError

    if not _APPARMOR_NAME.match(value):
        raise SpecError(
            f"invalid --security-opt apparmor={value!r}: a profile name has no spaces, "
            "newlines or '='"
        )
    return value


def parse_label_opt(value: str) -> str:
    """``label=user:U|role:R|type:T|level:L|disable`` -> ``FIELD:VALUE`` or ``disable``."""
    from lxcri_core.errors import SpecError

    if value == "disable":
        return value
    field, _, part = value.partition(":")
    if (
        field not in _LABEL_FIELDS
        or not _SELINUX_PART.match(part)
        or (field != "level" and ":" in part)
    ):
        raise SpecError(
            f"invalid --security-opt label={value!r}: expected user:U, role:R, type:T, "
            "level:L or disable"
        )
    return f"{field}:{part}"


def selinux_context(labels: list[str]) -> str:
    """The ``label=`` items in order -> the context for ``lxc.selinux.context`` (``""``:
    none: no item, or ``disable`` last)."""
    if not labels or labels[-1] == "disable":
        return ""
    ctx = list(SELINUX_DEFAULT)
    for item in labels:
        if item == "disable":
            ctx = list(SELINUX_DEFAULT)
            continue
        field, _, part = item.partition(":")
        ctx[_LABEL_FIELDS.index(field)] = part
    return ":".join(ctx)


def apparmor_warning(profile: str) -> str:
    """What a person should know about a chosen profile (``""``: nothing)."""
    if profile == APPARMOR_UNCONFINED:
        return (
            "apparmor=unconfined: the container runs without AppArmor confinement "
            "(where the host has AppArmor, its root can then reach /proc and /sys "
            "files the generated profile denies)"
        )
    if profile and profile not in APPARMOR_KNOWN:
        return f"apparmor={profile}: the profile must be loaded in the host's AppArmor"
    return ""
