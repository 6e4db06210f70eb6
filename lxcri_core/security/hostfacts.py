"""What this host's kernel offers for container security, each fact from one file.

``read_host_facts`` reads them all (a handful of small files, no command run);
every ``parse_*`` is pure and tested from recorded text. A file the kernel
does not have means the feature is absent (reported so), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxcri_core.fsutil import read_text
from lxcri_core.security.lsm import (
    LsmState,
    Reader,
    active_lsms,
    apparmor_state,
    selinux_state,
)

MOUNTINFO = "/proc/self/mountinfo"
SELF_STATUS = "/proc/self/status"
SECCOMP_ACTIONS = "/proc/sys/kernel/seccomp/actions_avail"
MAX_USERNS = "/proc/sys/user/max_user_namespaces"
#: Debian's and Ubuntu's switch for user namespaces of unprivileged users
UNPRIV_USERNS = "/proc/sys/kernel/unprivileged_userns_clone"


@dataclass(frozen=True)
class CgroupFacts:
    #: ``v1``, ``v2`` or ``hybrid`` (v1 controllers plus a v2 mount); ``none``
    version: str
    #: the v1 controllers mounted (``name=`` hierarchies left out)
    v1_controllers: tuple[str, ...]
    #: the controllers of the v2 hierarchy's root (``cgroup.controllers``)
    v2_controllers: tuple[str, ...]
    v2_mount: str


@dataclass(frozen=True)
class SeccompFacts:
    supported: bool
    #: ``kill_process kill_thread trap errno user_notif trace log allow``
    actions: tuple[str, ...]


@dataclass(frozen=True)
class UsernsFacts:
    #: ``user.max_user_namespaces``; 0 disables user namespaces (None: not a file here)
    max_user_namespaces: int | None
    #: Debian's ``kernel.unprivileged_userns_clone``; None when the kernel has no such switch
    unprivileged_clone: bool | None

    @property
    def available(self) -> bool:
        return self.max_user_namespaces is None or self.max_user_namespaces > 0


@dataclass(frozen=True)
class HostFacts:
    lsms: tuple[str, ...]
    #: where the LSM list came from: ``securityfs``, ``syscall`` or ``unknown``
    lsm_source: str
    apparmor: LsmState
    selinux: LsmState
    cgroup: CgroupFacts
    seccomp: SeccompFacts
    userns: UsernsFacts


def parse_cgroup_layout(mountinfo: str) -> tuple[list[str], str]:
    """A mount table -> (v1 controllers mounted, the v2 mount point or ``""``)."""
    v1: list[str] = []
    v2 = ""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        point = fields[4].replace("\\040", " ")
        if rfields[0] == "cgroup2" and not v2:
            v2 = point
        elif rfields[0] == "cgroup":
            v1 += [o for o in rfields[2].split(",") if o not in ("rw", "ro", "relatime")]
    return v1, v2


def cgroup_version(v1_mounted: list[str], v2_mount: str) -> str:
    real_v1 = [c for c in v1_mounted if not c.startswith("name=")]
    if real_v1 and v2_mount:
        return "hybrid"
    if real_v1:
        return "v1"
    return "v2" if v2_mount else "none"


def parse_seccomp(status: str, actions: str | None) -> SeccompFacts:
    """seccomp is built in when ``/proc/self/status`` has a ``Seccomp:`` line."""
    supported = any(line.startswith("Seccomp:") for line in status.splitlines())
    return SeccompFacts(supported, tuple(actions.split()) if actions and supported else ())


def parse_int_file(text: str | None) -> int | None:
    if text is None:
        return None
    value = text.strip()
    return int(value) if value.lstrip("-").isdigit() else None


def parse_userns(max_text: str | None, clone_text: str | None) -> UsernsFacts:
    clone = parse_int_file(clone_text)
    return UsernsFacts(parse_int_file(max_text), None if clone is None else clone != 0)


def read_host_facts(read: Reader = read_text) -> HostFacts:
    lsms, source = active_lsms(read)
    v1_mounted, v2 = parse_cgroup_layout(read(MOUNTINFO) or "")
    v2_ctrls = read(f"{v2}/cgroup.controllers") if v2 else None
    cgroup = CgroupFacts(
        version=cgroup_version(v1_mounted, v2),
        v1_controllers=tuple(c for c in v1_mounted if not c.startswith("name=")),
        v2_controllers=tuple((v2_ctrls or "").split()),
        v2_mount=v2,
    )
    return HostFacts(
        lsms=lsms,
        lsm_source=source,
        apparmor=apparmor_state(read, lsms),
        selinux=selinux_state(read, lsms),
        cgroup=cgroup,
        seccomp=parse_seccomp(read(SELF_STATUS) or "", read(SECCOMP_ACTIONS)),
        userns=parse_userns(read(MAX_USERNS), read(UNPRIV_USERNS)),
    )
