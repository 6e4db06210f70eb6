"""Linux capabilities by bit number, and the sets of a process from ``/proc/PID/status``.

``CapEff``/``CapPrm``/``CapBnd``/``CapAmb``/``CapInh`` are hexadecimal bit masks;
bit ``n`` is capability ``n`` of ``<linux/capability.h>``. A bit newer than this
table is shown as ``CAP_<n>`` rather than dropped, so a kernel with more
capabilities than lxcri knows is still reported whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxcri_core.errors import SpecError

#: Capability names (without ``CAP_``) by bit number, from <linux/capability.h>.
CAP_BITS: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)

#: Capabilities whose grant makes a container root close to host root: ``--cap-add``
#: of one of them is worth a warning (docker's docs say as much for each).
DANGEROUS_CAPS = frozenset(
    {
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_PTRACE",
        "SYS_BOOT",
        "SYS_TIME",
        "DAC_READ_SEARCH",
        "NET_ADMIN",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "BPF",
        "PERFMON",
        "SYSLOG",
        "LINUX_IMMUTABLE",
    }
)


def decode(mask: str) -> tuple[str, ...]:
    """``000001fffeffffff`` -> the capability names of its set bits, in bit order."""
    try:
        value = int(mask.strip(), 16)
    except ValueError:
        raise SpecError(f"capability mask {mask!r} is not hexadecimal") from None
    out = []
    bit = 0
    while value:
        if value & 1:
            out.append(CAP_BITS[bit] if bit < len(CAP_BITS) else f"CAP_{bit}")
        value >>= 1
        bit += 1
    return tuple(out)


def encode(names: tuple[str, ...] | list[str]) -> str:
    """The ``/proc`` mask of capability names (the inverse of ``decode``), 16 hex digits."""
    value = 0
    for name in names:
        value |= 1 << CAP_BITS.index(name.upper().removeprefix("CAP_"))
    return f"{value:016x}"


@dataclass(frozen=True)
class ProcSecurity:
    """The security state of one process as the kernel reports it."""

    effective: tuple[str, ...]
    permitted: tuple[str, ...]
    bounding: tuple[str, ...]
    ambient: tuple[str, ...]
    inheritable: tuple[str, ...]
    no_new_privs: bool
    #: ``disabled``, ``strict`` or ``filter``; ``unsupported`` when the kernel has no seccomp
    seccomp: str
    #: how many seccomp filters are attached (None when the kernel does not say)
    seccomp_filters: int | None
    uid: int
    gid: int


_SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


def parse_status(text: str) -> ProcSecurity:
    """``/proc/PID/status`` -> its capability sets, no_new_privs and seccomp state."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    for key in ("CapEff", "CapPrm", "CapBnd"):
        if key not in fields:
            raise SpecError(f"/proc status text has no {key} line")

    def caps(key: str) -> tuple[str, ...]:
        return decode(fields[key]) if key in fields else ()

    def first_int(key: str) -> int:
        parts = fields.get(key, "").split()
        return int(parts[0]) if parts and parts[0].isdigit() else -1

    filters = fields.get("Seccomp_filters")
    return ProcSecurity(
        effective=caps("CapEff"),
        permitted=caps("CapPrm"),
        bounding=caps("CapBnd"),
        ambient=caps("CapAmb"),
        inheritable=caps("CapInh"),
        no_new_privs=fields.get("NoNewPrivs") == "1",
        seccomp=_SECCOMP_MODES.get(fields.get("Seccomp", ""), "unsupported"),
        seccomp_filters=int(filters) if filters and filters.isdigit() else None,
        uid=first_int("Uid"),
        gid=first_int("Gid"),
    )
