"""One container's security: what its spec asked for beside what the kernel reports for
its running init (``/proc/PID/status``, ``uid_map``, ``gid_map``, the LSM label).

``container_report`` is pure given a reader, so the dashboard can build it for
many containers from files it already holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lxcri_core.containers.top import parse_uid_map
from lxcri_core.fsutil import read_text
from lxcri_core.security.caps import ProcSecurity, parse_status
from lxcri_core.security.lsm import (
    APPARMOR_DEFAULT,
    LsmState,
    Reader,
    process_label,
)
from lxcri_core.spec.model import SecuritySpec

if TYPE_CHECKING:
    from lxcri_core.backend import Backend
    from lxcri_core.config import Config


@dataclass(frozen=True)
class IdRange:
    inside: int
    outside: int
    count: int


@dataclass(frozen=True)
class ContainerSecurity:
    name: str
    vmid: int
    status: str
    pid: int | None
    privileged: bool
    #: the configured map: ``u 0 100000 65536`` lines
    idmaps: tuple[str, ...]
    #: the capabilities the spec keeps; None is every capability
    capabilities: tuple[str, ...] | None
    #: ``default``, ``unconfined`` or the profile file the user gave
    seccomp: str
    seccomp_unsupported: tuple[str, ...]
    no_new_privileges: bool
    features: dict[str, bool]
    apparmor_profile: str
    #: ``unavailable`` where the kernel has no AppArmor, else the running label
    apparmor: str
    selinux_context: str
    selinux: str
    #: the kernel's view of the running init; None when stopped. LXC's init keeps every
    #: capability of its user namespace; the bounding set is what limits its children
    process: ProcSecurity | None
    #: the container's process (the init's first child), which has the kept set itself
    app_pid: int | None
    app: ProcSecurity | None
    uid_map: tuple[IdRange, ...]
    gid_map: tuple[IdRange, ...]

    @property
    def host_root_uid(self) -> int | None:
        """The host uid the container's root is (0 when privileged), from ``uid_map``."""
        for r in self.uid_map:
            if r.inside <= 0 < r.inside + r.count:
                return r.outside - r.inside
        return None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["host_root_uid"] = self.host_root_uid
        return doc


def _ranges(text: str | None) -> tuple[IdRange, ...]:
    return tuple(IdRange(*r) for r in parse_uid_map(text or ""))


def container_report(
    sec: SecuritySpec,
    *,
    name: str,
    vmid: int,
    status: str,
    pid: int | None,
    apparmor: LsmState,
    selinux: LsmState,
    read: Reader = read_text,
) -> ContainerSecurity:
    """The report of one container; ``pid`` (its init on the host) when it runs."""
    process = app = app_pid = None
    uid_map: tuple[IdRange, ...] = ()
    gid_map: tuple[IdRange, ...] = ()
    aa = apparmor.state if apparmor.state == "unavailable" else ""
    se = selinux.state if selinux.state == "unavailable" else ""
    if pid is not None:
        text = read(f"/proc/{pid}/status")
        if text is not None:  # else it stopped while we looked
            process = parse_status(text)
            uid_map = _ranges(read(f"/proc/{pid}/uid_map"))
            gid_map = _ranges(read(f"/proc/{pid}/gid_map"))
            kids = (read(f"/proc/{pid}/task/{pid}/children") or "").split()
            app_text = read(f"/proc/{kids[0]}/status") if kids and kids[0].isdigit() else None
            if app_text is not None:
                app_pid, app = int(kids[0]), parse_status(app_text)
            if not aa:
                aa = process_label(pid, "apparmor", read) or "unknown"
            if not se:
                se = process_label(pid, "selinux", read) or "unknown"
    return ContainerSecurity(
        name=name,
        vmid=vmid,
        status=status,
        pid=pid,
        privileged=sec.privileged,
        idmaps=tuple(f"{m.kind} {m.start} {m.host} {m.count}" for m in sec.idmaps)
        if sec.unprivileged
        else (),
        capabilities=sec.capabilities,
        seccomp=sec.seccomp,
        seccomp_unsupported=sec.seccomp_unsupported,
        no_new_privileges=sec.no_new_privileges,
        features={
            "nesting": sec.nesting,
            "keyctl": sec.keyctl,
            "fuse": sec.fuse,
            "mknod": sec.mknod,
        },
        apparmor_profile=sec.apparmor_profile or APPARMOR_DEFAULT,
        apparmor=aa or "stopped",
        selinux_context=sec.selinux_context,
        selinux=se or "stopped",
        process=process,
        app_pid=app_pid,
        app=app,
        uid_map=uid_map,
        gid_map=gid_map,
    )


def plain_lxc_report(cfg: Config, backend: Backend, name: str) -> ContainerSecurity:
    """The report of plain-LXC container ``name``: its record's security spec, its
    status from ``backend`` (the init's pid when it runs) and the host's LSMs."""
    from lxcri_core.backend import CtRef
    from lxcri_core.containers.record import load_record
    from lxcri_core.security.hostfacts import read_host_facts

    rec = load_record(cfg.root, name)
    st = backend.status(CtRef(name))
    facts = read_host_facts()
    return container_report(
        rec.spec.security,
        name=rec.name,
        vmid=rec.vmid,
        status=st.status,
        pid=st.pid if st.status == "running" else None,
        apparmor=facts.apparmor,
        selinux=facts.selinux,
    )
