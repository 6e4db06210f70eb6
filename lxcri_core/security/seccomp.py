"""Seccomp profiles in LXC's v2 text format: lxcri's default, and OCI / Docker JSON translated.

LXC's format (``lxc.seccomp.profile``, src/lxc/seccomp.c)::

    2
    allowlist errno 1            # or: denylist [ACTION]; the action for unlisted calls
    [all]                        # or [x86_64], [x86], [x32], [arm64], ...
    mount errno 1
    clone errno 1 [0,0x10000000,SCMP_CMP_MASKED_EQ,0x10000000]

LXC knows the actions ``allow``, ``errno N``, ``kill`` (the thread), ``trap``
and ``notify`` (a proxy must then be configured), argument conditions
``[index,value,OP]`` and ``[index,value,SCMP_CMP_MASKED_EQ,mask]`` (at most
six per rule, ANDed) and no filter flags. Whatever a JSON profile asks that LXC
cannot express is listed in ``Translation.unsupported`` by name; nothing is
dropped without being reported.

A profile is hostile input: its syscall names are checked against a strict
pattern (a newline or a ``[`` in a name would add rules of the author's
choosing to the LXC text), its size and rule count are bounded, and the file
must be a regular file (a fifo or a device would hang or never end).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxcri_core.errors import SpecError

#: A profile file larger than this is refused (Docker's default is ~20 KiB).
MAX_PROFILE_BYTES = 1 << 20
#: Lines of LXC rules a translation may produce.
MAX_RULES = 8192
_SYSCALL = re.compile(r"^[a-z_][a-z0-9_]{0,63}\Z")

# -- lxcri's default profile --------------------------------------------------------------

#: Always denied (EPERM), as Docker's default profile does: kernel modules and kexec,
#: swap, accounting, raw I/O ports, handle-based opens, BPF and perf, userfaultfd,
#: io_uring (a large kernel attack surface), and obsolete calls.
BASE_DENY = (
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "acct",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
)
EXTRA_DENY = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
)
#: Calls Docker allows only with a capability; denied when the container lacks it.
CAP_GATED: dict[str, tuple[str, ...]] = {
    "SYS_ADMIN": (
        "mount",
        "umount2",
        "pivot_root",
        "setns",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "open_tree",
        "move_mount",
        "mount_setattr",
        "quotactl",
        "fanotify_init",
    ),
    "SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_adjtime"),
    "SYS_BOOT": ("reboot",),
    "SYSLOG": ("syslog",),
    "SYS_PTRACE": ("kcmp", "process_vm_readv", "process_vm_writev"),
    "SYS_TTY_CONFIG": ("vhangup",),
}
#: clone/unshare flags that make a namespace; Docker refuses them without CAP_SYS_ADMIN
#: (a new user namespace gives its creator every capability inside it).
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
ENOSYS = 38


def default_profile(
    caps: Iterable[str] | None, *, keyctl: bool, nesting: bool, privileged: bool
) -> str:
    """lxcri's default (LXC text): Docker's intent as a denylist, tailored to the
    container's capabilities (``None``: all) and pct features.

    A denylist rather than Docker's allowlist: LXC skips names libseccomp does not
    know, so an allowlist would deny every call newer than the host's libseccomp.
    """
    have = None if caps is None else set(caps)
    lines = ["2", "denylist", "reject_force_umount", "[all]"]
    lines += [f"{name} errno 1" for name in (*BASE_DENY, *EXTRA_DENY)]
    if not keyctl and not privileged:
        # the kernel keyring is not namespaced; ENOSYS as Proxmox answers (systemd falls back)
        lines += [f"{name} errno {ENOSYS}" for name in ("keyctl", "add_key", "request_key")]
    if not privileged:
        # Proxmox: btrfs ioctls misbehave in user namespaces ((request & 0xff00) == 0x9400)
        lines.append("ioctl errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]")
    for cap, names in CAP_GATED.items():
        if have is not None and cap not in have and not (cap == "SYS_ADMIN" and nesting):
            lines += [f"{name} errno 1" for name in names]
    if have is not None and "SYS_ADMIN" not in have and not nesting:
        for flag in NAMESPACE_FLAGS.values():
            lines.append(f"unshare errno 1 [0,{flag:#x},SCMP_CMP_MASKED_EQ,{flag:#x}]")
            lines.append(f"clone errno 1 [0,{flag:#x},SCMP_CMP_MASKED_EQ,{flag:#x}]")
        # clone3 passes its flags in memory, which seccomp cannot read: ENOSYS makes
        # libc fall back to clone, which the rules above see (Docker does the same)
        lines.append(f"clone3 errno {ENOSYS}")
    return "\n".join(lines) + "\n"


# -- OCI / Docker JSON -> LXC ---------------------------------------------------------------

#: OCI/libseccomp architecture names -> LXC's section names.
ARCHES = {
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "arm64",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
}
#: Docker's ``includes.arches`` names (Go's GOARCH) -> LXC's section names.
GO_ARCHES = {
    "amd64": ("x86_64",),
    "386": ("x86",),
    "x86": ("x86",),
    "x32": ("x32",),
    "arm": ("arm",),
    "arm64": ("arm64",),
    "ppc64le": ("ppc64le",),
    "ppc64": ("ppc64",),
    "s390": ("s390",),
    "s390x": ("s390x",),
    "mips64": ("mips64",),
    "mips64n32": ("mips64n32",),
    "mipsel64": ("mipsel64",),
    "mipsel64n32": ("mipsel64n32",),
    "mips": ("mips",),
    "mipsel": ("mipsel",),
}
_OPS = {
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
}
_KNOWN_KEYS = {
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "syscalls",
    "flags",
    "listenerPath",
    "listenerMetadata",
}
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Translation:
    """An LXC profile and what of the JSON it could not carry (one line per item)."""

    text: str
    unsupported: tuple[str, ...] = ()
    #: rules left out on purpose (a capability the container lacks, a newer kernel)
    skipped: int = 0
    #: how the source was written: ``lxc`` or ``json``
    source_format: str = "json"
    rules: int = field(default=0)


def _bad(why: str) -> SpecError:
    return SpecError(f"seccomp profile: {why}")


def _action(name: Any, errno_ret: Any, default_errno: int) -> str | None:
    """An OCI action -> LXC's words, or None when LXC has no such action."""
    if name == "SCMP_ACT_ALLOW":
        return "allow"
    if name == "SCMP_ACT_ERRNO":
        n = default_errno if errno_ret is None else errno_ret
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 4095:
            raise _bad(f"errnoRet {n!r} is not an errno number (0-4095)")
        return f"errno {n}"
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return "kill"
    if name == "SCMP_ACT_TRAP":
        return "trap"
    if not isinstance(name, str) or not name.startswith("SCMP_ACT_"):
        raise _bad(f"action {str(name)[:40]!r} is not a seccomp action")
    return None  # KILL_PROCESS, LOG, TRACE, NOTIFY: LXC cannot express them


def _u64(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64:
        raise _bad(f"{what} {str(value)[:40]!r} is not an unsigned 64-bit number")
    return value


def _arg(arg: Any) -> str:
    if not isinstance(arg, Mapping):
        raise _bad("an argument condition is not an object")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
        raise _bad(f"argument index {str(index)[:20]!r} is not 0-5")
    op = arg.get("op")
    if op not in _OPS:
        raise _bad(f"argument operator {str(op)[:40]!r} is unknown")
    value = _u64(arg.get("value", 0), "argument value")
    if op == "SCMP_CMP_MASKED_EQ":
        # OCI: value is the mask, valueTwo the datum; LXC: [index,datum,op,mask]
        datum = _u64(arg.get("valueTwo", 0), "argument valueTwo")
        return f"[{index},{datum:#x},{op},{value:#x}]"
    return f"[{index},{value:#x},{op}]"


def _names(rule: Mapping[str, Any]) -> list[str]:
    names = rule.get("names")
    if names is None and "name" in rule:
        names = [rule["name"]]
    if not isinstance(names, list) or not names:
        raise _bad("a syscall rule has no names")
    for n in names:
        if not isinstance(n, str) or not _SYSCALL.match(n):
            raise _bad(f"{str(n)[:40]!r} is not a system call name")
    return names


def _caps(value: Any) -> set[str]:
    """Docker's ``includes.caps`` (``CAP_SYS_ADMIN``) -> ``{"SYS_ADMIN"}``."""
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _bad("includes/excludes caps is not a list of names")
    return {c.upper().removeprefix("CAP_") for c in value}


def _kernel_at_least(min_kernel: Any, kernel: tuple[int, int]) -> bool:
    if not isinstance(min_kernel, str) or not re.match(r"^\d+\.\d+\Z", min_kernel):
        raise _bad(f"minKernel {str(min_kernel)[:20]!r} is not MAJOR.MINOR")
    major, minor = (int(p) for p in min_kernel.split("."))
    return kernel >= (major, minor)


def _arch_sections(names: Any, what: str) -> list[str]:
    if not isinstance(names, list):
        raise _bad(f"{what} is not a list")
    out: list[str] = []
    for n in names:
        if not isinstance(n, str):
            raise _bad(f"{what} holds a non-string")
        if n not in GO_ARCHES:
            raise _bad(f"{what}: unknown architecture {n[:30]!r}")
        out += GO_ARCHES[n]
    return out


def translate(
    doc: Any,
    caps: Iterable[str] | None = None,
    kernel: tuple[int, int] = (99, 0),
) -> Translation:
    """An OCI (``linux.seccomp``) or Docker seccomp profile -> LXC's text.

    Docker's ``includes``/``excludes`` are decided here for this container:
    ``caps`` are the capabilities it keeps (None: all), ``kernel`` the host's
    (major, minor) for ``minKernel``.
    """
    if not isinstance(doc, Mapping):
        raise _bad("the JSON document is not an object")
    have = None if caps is None else set(caps)
    unsupported: list[str] = [f"key {k[:40]!r} (unknown)" for k in doc if k not in _KNOWN_KEYS]
    default_errno = doc.get("defaultErrnoRet", 1)
    default = _action(doc.get("defaultAction"), default_errno, 1)
    if default is None:
        raise _bad(
            f"defaultAction {doc.get('defaultAction')} cannot be expressed in LXC "
            "(it knows allow, errno, kill and trap)"
        )
    flags = doc.get("flags") or []
    if not isinstance(flags, list):
        raise _bad("flags is not a list")
    unsupported += [f"flag {str(f)[:60]}" for f in flags]
    for key in ("listenerPath", "listenerMetadata"):
        if doc.get(key):
            unsupported.append(f"{key} (LXC's notify proxy is configured apart)")
    arches = doc.get("architectures") or []
    if not isinstance(arches, list):
        raise _bad("architectures is not a list")
    sections_all: list[str] = []
    for a in arches:
        if a not in ARCHES:
            raise _bad(f"unknown architecture {str(a)[:30]!r}")
        sections_all.append(ARCHES[a])
    rules = doc.get("syscalls") or []
    if not isinstance(rules, list):
        raise _bad("syscalls is not a list")

    by_section: dict[str, list[str]] = {"all": []}
    skipped = count = 0
    for rule in rules:
        if not isinstance(rule, Mapping):
            raise _bad("a syscalls entry is not an object")
        names = _names(rule)
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if not isinstance(inc, Mapping) or not isinstance(exc, Mapping):
            raise _bad("includes/excludes is not an object")
        want_caps, unless_caps = _caps(inc.get("caps")), _caps(exc.get("caps"))
        if have is not None and not want_caps <= have:
            skipped += 1
            continue
        if unless_caps and (have is None or unless_caps & have):
            skipped += 1
            continue
        if "minKernel" in inc and not _kernel_at_least(inc["minKernel"], kernel):
            skipped += 1
            continue
        action = _action(rule.get("action"), rule.get("errnoRet"), default_errno)
        if action is None:
            unsupported.append(f"action {rule.get('action')} for {', '.join(names)}")
            continue
        args = rule.get("args") or []
        if not isinstance(args, list):
            raise _bad("args is not a list")
        conds = [_arg(a) for a in args]
        indexes = {a["index"] for a in args}
        if len(conds) > 6:
            unsupported.append(f"more than six argument conditions for {', '.join(names)}")
            continue
        # runc: conditions all on one argument are alternatives (one rule each)
        variants = [[c] for c in conds] if len(conds) > 1 and len(indexes) == 1 else [conds]
        sections = ["all"]
        if inc.get("arches"):
            sections = _arch_sections(inc["arches"], "includes.arches")
        elif exc.get("arches"):
            excluded = set(_arch_sections(exc["arches"], "excludes.arches"))
            if not sections_all:
                unsupported.append(f"excludes.arches for {', '.join(names)} without architectures")
                continue
            sections = [s for s in sections_all if s not in excluded]
        for section in sections:
            for name in names:
                for v in variants:
                    by_section.setdefault(section, []).append(" ".join([name, action, *v]))
                    count += 1
                    if count > MAX_RULES:  # checked per line: one rule may multiply
                        raise _bad(f"more than {MAX_RULES} rules")

    # LXC: "allowlist" and "denylist" differ only in defaults; the default is explicit here
    header = "denylist" if default == "allow" else f"allowlist {default}"
    lines = ["2", header]
    for section, body in by_section.items():
        if body:
            lines.append(f"[{section}]")
            lines += body
    return Translation("\n".join(lines) + "\n", tuple(unsupported), skipped, "json", rules=count)


def check_lxc_text(text: str) -> Translation:
    """A profile already in LXC's format: its header is checked, the rest is LXC's to judge."""
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() not in ("1", "2"):
        raise _bad("not JSON and not LXC's format (its first line is the version, 1 or 2)")
    policy = lines[1].split(" ", 1)[0]
    if policy not in ("allowlist", "denylist", "whitelist", "blacklist"):
        raise _bad("the second line of an LXC profile is allowlist or denylist")
    if "debug" in lines[1]:
        raise _bad("LXC refuses a 'debug' profile")
    return Translation(text if text.endswith("\n") else text + "\n", source_format="lxc")


def parse_profile(
    data: bytes, caps: Iterable[str] | None = None, kernel: tuple[int, int] = (99, 0)
) -> Translation:
    """A profile file's bytes, either format, -> LXC text."""
    if len(data) > MAX_PROFILE_BYTES:
        raise _bad(f"larger than {MAX_PROFILE_BYTES} bytes")
    if b"\x00" in data:
        raise _bad("holds NUL bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _bad("not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise _bad(f"not valid JSON ({str(e)[:80]})") from None
        return translate(doc, caps, kernel)
    return check_lxc_text(text)


def read_profile_file(path: str) -> bytes:
    """The bytes of a profile file the user named: a regular file (a symlink to one is
    followed, as docker does), bounded in size, never a fifo or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpecError(f"--security-opt seccomp={path}: no such profile file") from None
    except OSError as e:
        raise SpecError(f"--security-opt seccomp={path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"--security-opt seccomp={path}: not a regular file")
        if st.st_size > MAX_PROFILE_BYTES:
            raise SpecError(f"--security-opt seccomp={path}: larger than {MAX_PROFILE_BYTES} bytes")
        chunks = []
        left = MAX_PROFILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def host_kernel() -> tuple[int, int]:
    """This kernel's (major, minor)."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def load_profile(path: str, caps: Iterable[str] | None) -> Translation:
    """``--security-opt seccomp=PATH`` -> the LXC text to give the container."""
    try:
        return parse_profile(read_profile_file(path), caps, host_kernel())
    except SpecError as e:
        if e.msg.startswith("--security-opt"):
            raise
        raise SpecError(f"--security-opt seccomp={path}: {e.msg}") from None
