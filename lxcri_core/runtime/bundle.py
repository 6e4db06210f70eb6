"""An OCI bundle's ``config.json`` (runtime-spec 1.0-1.2) -> ContainerSpec + LXC keys.

The ContainerSpec carries what lxcri's own containers have too (process,
user, capabilities, rlimits, seccomp, id maps, hostname, read-only root);
``render_lxc_config`` renders it. What only an OCI bundle asks for (mounts
with their options, namespaces joined by path, sysctl, masked and read-only
paths, cgroup resources, the cgroup path, OOM score) becomes extra
``lxc.*`` lines in :class:`Bundle`. A field LXC cannot express is a
``SpecError`` naming the field: a silent drop would run a container weaker
than its config says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core.errors import SpecError
from lxcri_core.runtime.hookspec import Hook
from lxcri_core.security.caps import CAP_BITS
from lxcri_core.spec.lxc_config import fstab_escape
from lxcri_core.spec.model import (
    ContainerSpec,
    IdMap,
    NetworkSpec,
    SecuritySpec,
    Ulimit,
    User,
)

#: The runtime-spec versions this runtime reads (the major must be 1).
OCI_VERSION_MAX = "1.2.0"
#: The OCI hook kinds, in the order the spec runs them.
HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
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
_NS_TYPES = frozenset(("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"))
#: What LXC does itself at these targets (lxc.mount.auto, lxc.autodev, its devpts).
_LXC_MOUNTS = {"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts"}
_CGROUP_KEY = re.compile(r"^[a-z_][a-z0-9_.]{0,63}\Z")
_SYSCTL = re.compile(r"^[a-z0-9_][a-z0-9_./-]{0,127}\Z")
_ID = re.compile(r"^[A-Za-z0-9_+.-]{1,1024}\Z")


@dataclass(frozen=True)
class BindTarget:
    """A mount whose target the runtime creates in the rootfs before LXC mounts it."""

    target: str
    kind: str  # dir | file


@dataclass(frozen=True)
class Bundle:
    """A translated bundle: the spec, the extra LXC lines, and what the lifecycle needs.

    ``mount_lines`` hold ``{target}`` where the resolved rootfs-relative
    target of ``targets[i]`` goes (``ops`` creates them inside the rootfs).
    """

    spec: ContainerSpec
    rootfs: Path
    lines: tuple[str, ...] = ()
    mount_lines: tuple[tuple[int, str], ...] = ()
    targets: tuple[BindTarget, ...] = ()
    mount_auto: str = "proc:rw sys:ro cgroup:ro"
    #: paths to cover with an empty read-only mount (masked) or make read-only
    masked: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    #: written (as runc does) after the mounts, before the read-only paths
    sysctl: Mapping[str, str] = field(default_factory=dict)
    hooks: Mapping[str, tuple[Hook, ...]] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False
    cgroup_dir: str = ""


def _err(path: str, why: str) -> SpecError:
    return SpecError(f"config.json: {path}: {why}")


def _obj(doc: Any, path: str) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _err(path, "must be an object")
    return doc


def _list(doc: Any, path: str) -> list[Any]:
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise _err(path, "must be a list")
    return doc


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise _err(path, "must be a string")
    if "\0" in v or "\n" in v:
        raise _err(path, "holds a NUL byte or a newline")
    return v


def _args(v: Any, path: str) -> tuple[str, ...]:
    """argv or environment entries: any text but NUL (the shim reads them NUL-separated)."""
    out = []
    for i, x in enumerate(_list(v, path)):
        if not isinstance(x, str):
            raise _err(f"{path}[{i}]", "must be a string")
        if "\0" in x:
            raise _err(f"{path}[{i}]", "holds a NUL byte")
        out.append(x)
    return tuple(out)


def _int(v: Any, path: str, lo: int = -(2**63), hi: int = 2**64 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _err(path, f"must be an integer in [{lo}, {hi}]")
    return v


def _strs(v: Any, path: str) -> tuple[str, ...]:
    return tuple(_str(x, f"{path}[{i}]") for i, x in enumerate(_list(v, path)))


def _unsupported(doc: Mapping[str, Any], keys: Sequence[str], prefix: str, why: str) -> None:
    for k in keys:
        if doc.get(k) not in (None, {}, [], ""):
            raise _err(f"{prefix}{k}", why)


def check_id(cid: str) -> str:
    """A container id as runc takes it (it names a directory: no ``/``, not ``.``/``..``)."""
    if not _ID.match(cid) or cid in (".", ".."):
        raise SpecError(f"invalid id format: {cid}")
    return cid


def load(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's config.json as a dict."""
    import json

    path = bundle_dir / "config.json"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise SpecError(f"{path} is not valid JSON: {str(e)[:80]}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"{path} is not a JSON object")
    return doc


def translate(doc: Mapping[str, Any], bundle_dir: Path) -> Bundle:
    """``config.json`` (already parsed) -> a :class:`Bundle`; SpecError names the field."""
    version = _str(doc.get("ociVersion", ""), "ociVersion")
    if not version.startswith("1."):
        raise _err("ociVersion", f"{version!r} is not a 1.x runtime-spec version")
    _unsupported(doc, ("solaris", "windows", "vm", "zos"), "", "not a Linux container")
    root = _obj(doc.get("root"), "root")
    rpath = _str(root.get("path", ""), "root.path")
    if not rpath:
        raise _err("root.path", "is required")
    rootfs = Path(rpath) if rpath.startswith("/") else bundle_dir / rpath
    if not rootfs.is_dir():
        raise _err("root.path", f"{rootfs} is not a directory")
    process = _obj(doc.get("process"), "process")
    linux = _obj(doc.get("linux"), "linux")
    hooks = translate_hooks(_obj(doc.get("hooks"), "hooks"))
    # any text: ``state`` prints them JSON-encoded, they reach no config line
    annotations = _obj(doc.get("annotations"), "annotations")
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise _err(f"annotations.{k}", "must be a string")
    lines: list[str] = []

    # namespaces and ids
    user_ns, host_net, ns_lines = _namespaces(_list(linux.get("namespaces"), "linux.namespaces"))
    lines += ns_lines
    idmaps = _idmaps(linux, user_ns)
    user = _process_user(process)
    caps = _capabilities(_obj(process.get("capabilities"), "process.capabilities"), user.uid)
    seccomp_text = ""
    if linux.get("seccomp") is not None:
        from lxcri_core.security.seccomp import host_kernel
        from lxcri_core.security.seccomp import translate as seccomp_translate

        tr = seccomp_translate(_obj(linux["seccomp"], "linux.seccomp"), caps, host_kernel())
        if tr.unsupported:
            raise _err("linux.seccomp", "LXC cannot express " + "; ".join(tr.unsupported))
        seccomp_text = tr.text
    security = SecuritySpec(
        privileged=not user_ns,
        idmaps=idmaps,
        capabilities=caps,
        seccomp="oci" if seccomp_text else "unconfined",
        seccomp_profile=seccomp_text,
        no_new_privileges=process.get("noNewPrivileges") is True,
        apparmor_profile=_str(process.get("apparmorProfile", ""), "process.apparmorProfile"),
        selinux_context=_str(process.get("selinuxLabel", ""), "process.selinuxLabel"),
        # the OCI config lists its devices itself (linux.resources.devices)
        fuse=False,
    )
    if not security.shim_sets_ids and user.additional_gids:
        raise _err(
            "process.user.additionalGids",
            "needs CAP_SETUID and CAP_SETGID in the bounding set (LXC sets no groups)",
        )

    if "oomScoreAdj" in process:
        adj = _int(process["oomScoreAdj"], "process.oomScoreAdj", -1000, 1000)
        lines.append(f"lxc.proc.oom_score_adj = {adj}")
    _unsupported(
        process,
        ("ioPriority", "scheduler", "execCPUAffinity", "commandLine", "consoleSize"),
        "process.",
        "LXC cannot set it",
    )
    args = _args(process.get("args"), "process.args")
    if not args:
        raise _err("process.args", "is required and must not be empty")
    cwd = _str(process.get("cwd", "/"), "process.cwd")
    if not cwd.startswith("/"):
        raise _err("process.cwd", "must be an absolute path")
    env = _args(process.get("env"), "process.env")
    for i, item in enumerate(env):
        if "=" not in item:
            raise _err(f"process.env[{i}]", "is not KEY=VALUE")

    ulimits = []
    for i, rl in enumerate(_list(process.get("rlimits"), "process.rlimits")):
        rl = _obj(rl, f"process.rlimits[{i}]")
        kind = _str(rl.get("type", ""), f"process.rlimits[{i}].type")
        if not re.match(r"^RLIMIT_[A-Z]{2,12}\Z", kind):
            raise _err(f"process.rlimits[{i}].type", f"{kind!r} is not an RLIMIT_ name")
        soft = _int(rl.get("soft"), f"process.rlimits[{i}].soft", 0)
        hard = _int(rl.get("hard"), f"process.rlimits[{i}].hard", 0)
        big = 2**63  # RLIM_INFINITY as JSON writes it
        ulimits.append(
            Ulimit(kind[7:].lower(), -1 if soft >= big else soft, -1 if hard >= big else hard)
        )

    # linux, the rest
    ns_types = {ns.get("type") for ns in _list(linux.get("namespaces"), "") if isinstance(ns, dict)}
    sysctl = {}
    for key, value in _obj(linux.get("sysctl"), "linux.sysctl").items():
        if not _SYSCTL.match(key) or ".." in key or "//" in key:
            raise _err(f"linux.sysctl.{key}", "is not a sysctl name")
        _check_sysctl(key, ns_types)
        sysctl[key] = _str(value, f"linux.sysctl.{key}")
    lines += resource_lines(_obj(linux.get("resources"), "linux.resources"))
    cgroup_dir = ""
    if linux.get("cgroupsPath"):
        cg = _str(linux["cgroupsPath"], "linux.cgroupsPath")
        if ":" in cg or ".." in cg.split("/"):
            raise _err("linux.cgroupsPath", "systemd slices (a:b:c) and '..' are not supported")
        cgroup_dir = cg.strip("/")
    _unsupported(
        linux,
        ("intelRdt", "personality", "memoryPolicy", "netDevices", "timeOffsets", "mountLabel"),
        "linux.",
        "LXC cannot express it",
    )
    prop = linux.get("rootfsPropagation", "")
    if prop not in ("", "private", "rprivate", "slave", "rslave"):
        raise _err("linux.rootfsPropagation", f"{prop!r}: LXC keeps the rootfs private or slave")
    dev_lines, dev_targets = _devices(_list(linux.get("devices"), "linux.devices"))
    masked = _strs(linux.get("maskedPaths"), "linux.maskedPaths")
    readonly = _strs(linux.get("readonlyPaths"), "linux.readonlyPaths")
    for what, paths in (("maskedPaths", masked), ("readonlyPaths", readonly)):
        for i, p in enumerate(paths):
            if not p.startswith("/") or ".." in p.split("/"):
                raise _err(f"linux.{what}[{i}]", f"{p!r} is not an absolute clean path")

    mount_auto, mount_lines, targets = _mounts(_list(doc.get("mounts"), "mounts"))
    for line in dev_lines:
        mount_lines.append((-1, line))
    targets += dev_targets
    hostname = _str(doc.get("hostname", ""), "hostname")
    if hostname and "uts" not in ns_types:
        raise _err("hostname", "setting a hostname needs a uts namespace")
    joined = {
        ns.get("type")
        for ns in _list(linux.get("namespaces"), "")
        if isinstance(ns, dict) and ns.get("path")
    }
    if hostname and "uts" in joined:
        # as runc: the name belongs to whoever made the namespace (the pod's sandbox)
        raise _err("hostname", "setting a hostname needs a uts namespace of its own")
    if doc.get("domainname"):
        raise _err("domainname", "LXC sets no NIS domain name")
    spec = ContainerSpec(
        image="",
        args=args,
        env=env,
        working_dir=cwd,
        user=user,
        hostname=hostname,
        network=NetworkSpec(mode="none"),
        security=security,
        tty=process.get("terminal") is True,
        read_only=root.get("readonly") is True,
        ulimits=tuple(ulimits),
    )
    return Bundle(
        spec=spec,
        rootfs=rootfs,
        lines=tuple(lines),
        mount_lines=tuple(mount_lines),
        targets=tuple(targets),
        mount_auto=mount_auto,
        masked=masked,
        readonly=readonly,
        sysctl=sysctl,
        hooks=hooks,
        annotations=annotations,
        host_network=host_net,
        cgroup_dir=cgroup_dir,
    )


#: The sysctls an IPC namespace holds (runc's list); fs.mqueue.* too.
_IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)


def _check_sysctl(key: str, ns_types: set[Any]) -> None:
    """Only a sysctl of a namespace the container has of its own: any other would be
    written to the host's kernel (kernel.core_pattern runs a host program as root)."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        need = "ipc"
    elif key.startswith("net."):
        need = "network"
    elif key in ("kernel.hostname", "kernel.domainname"):
        need = "uts"
    else:
        raise _err(f"linux.sysctl.{key}", "no namespace holds it: it would change the host")
    if need not in ns_types:
        raise _err(
            f"linux.sysctl.{key}",
            f"without a {need} namespace of its own it would change the host's",
        )


def translate_hooks(doc: Mapping[str, Any]) -> dict[str, tuple[Hook, ...]]:
    out: dict[str, tuple[Hook, ...]] = {}
    for kind, entries in doc.items():
        if kind not in HOOK_KINDS:
            raise _err(f"hooks.{kind}", "is not an OCI hook kind")
        if kind == "startContainer" and entries:
            raise _err(
                "hooks.startContainer",
                "LXC runs no host program in the container's namespaces after pivot_root",
            )
        hooks = []
        for i, h in enumerate(_list(entries, f"hooks.{kind}")):
            h = _obj(h, f"hooks.{kind}[{i}]")
            path = _str(h.get("path", ""), f"hooks.{kind}[{i}].path")
            if not path.startswith("/"):
                raise _err(f"hooks.{kind}[{i}].path", "must be absolute")
            timeout = h.get("timeout")
            if timeout is not None:
                timeout = _int(timeout, f"hooks.{kind}[{i}].timeout", 1, 86400)
            hooks.append(
                Hook(
                    path,
                    _strs(h.get("args"), f"hooks.{kind}[{i}].args"),
                    _strs(h.get("env"), f"hooks.{kind}[{i}].env"),
                    timeout,
                )
            )
        out[kind] = tuple(hooks)
    return out


def _namespaces(entries: list[Any]) -> tuple[bool, bool, list[str]]:
    """(user namespace?, host network?, lxc.namespace.* lines)."""
    seen: dict[str, str] = {}
    for i, ns in enumerate(entries):
        ns = _obj(ns, f"linux.namespaces[{i}]")
        kind = _str(ns.get("type", ""), f"linux.namespaces[{i}].type")
        if kind not in _NS_TYPES:
            raise _err(f"linux.namespaces[{i}].type", f"{kind!r} is not a namespace type")
        if kind in seen:
            raise _err(f"linux.namespaces[{i}]", f"{kind} is listed twice")
        seen[kind] = _str(ns.get("path", ""), f"linux.namespaces[{i}].path")
    if "mount" not in seen:
        raise _err("linux.namespaces", "LXC always gives a container its own mount namespace")
    if seen["mount"]:
        raise _err("linux.namespaces", "LXC cannot join an existing mount namespace")
    if "time" in seen:
        raise _err("linux.namespaces", "LXC 5 cannot create or join a time namespace")
    if "pid" not in seen:
        raise _err("linux.namespaces", "LXC 5 cannot keep the host's pid namespace")
    lines: list[str] = []
    # the namespaces to create, said positively: lxc.namespace.keep makes LXC 5
    # create a user namespace without a map. No cgroup entry: LXC 5 fails to start
    # when told to keep the host's, so the container gets its own one -- stricter
    # than asked, never weaker
    host_net = "network" not in seen
    clone = ["mnt", "pid", "cgroup"]
    clone += [k for k in ("uts", "ipc") if k in seen]
    clone += ["net"] if not host_net else []
    clone += ["user"] if "user" in seen else []
    lines.append(f"lxc.namespace.clone = {' '.join(clone)}")
    for kind, path in seen.items():
        if not path:
            continue
        if not path.startswith("/"):
            raise _err("linux.namespaces", f"{kind} path {path!r} is not absolute")
        if kind == "user":
            raise _err("linux.namespaces", "LXC cannot join an existing user namespace")
        name = "net" if kind == "network" else kind
        lines.append(f"lxc.namespace.share.{name} = {path}")
    return "user" in seen, host_net, lines


def _idmaps(linux: Mapping[str, Any], user_ns: bool) -> tuple[IdMap, ...]:
    maps: list[IdMap] = []
    for key, kind in (("uidMappings", "u"), ("gidMappings", "g")):
        for i, m in enumerate(_list(linux.get(key), f"linux.{key}")):
            m = _obj(m, f"linux.{key}[{i}]")
            try:
                maps.append(
                    IdMap(
                        host=_int(m.get("hostID"), f"linux.{key}[{i}].hostID", 0),
                        count=_int(m.get("size"), f"linux.{key}[{i}].size", 1),
                        start=_int(m.get("containerID"), f"linux.{key}[{i}].containerID", 0),
                        kind=kind,  # type: ignore[arg-type]
                    )
                )
            except SpecError as e:
                if e.msg.startswith("config.json"):
                    raise
                raise _err(f"linux.{key}[{i}]", e.msg) from None
    if user_ns and not {m.kind for m in maps} >= {"u", "g"}:
        raise _err("linux.uidMappings", "a user namespace needs uid and gid mappings")
    if maps and not user_ns:
        raise _err("linux.uidMappings", "mappings without a user namespace")
    return tuple(maps)


def _process_user(process: Mapping[str, Any]) -> User:
    u = _obj(process.get("user"), "process.user")
    if u.get("umask") is not None:
        raise _err("process.user.umask", "LXC cannot set the process's umask")
    if u.get("username"):
        raise _err("process.user.username", "only for Windows containers")
    groups = tuple(
        _int(g, f"process.user.additionalGids[{i}]", 0, 2**32 - 2)
        for i, g in enumerate(_list(u.get("additionalGids"), "process.user.additionalGids"))
    )
    return User(
        uid=_int(u.get("uid", 0), "process.user.uid", 0, 2**32 - 2),
        gid=_int(u.get("gid", 0), "process.user.gid", 0, 2**32 - 2),
        additional_gids=groups,
    )


def _cap_names(v: Any, path: str) -> set[str]:
    out = set()
    for i, name in enumerate(_list(v, path)):
        name = _str(name, f"{path}[{i}]").upper()
        short = name[4:] if name.startswith("CAP_") else name
        if short not in CAP_BITS:
            raise _err(f"{path}[{i}]", f"unknown capability {name}")
        out.add(short)
    return out


def _capabilities(caps: Mapping[str, Any], uid: int) -> tuple[str, ...]:
    """The bounding set (``lxc.cap.keep``), after checking LXC gives the other sets alike.

    LXC sets the bounding set; its init runs as root, so the effective and
    permitted sets are the bounding set, and a switch to another uid clears
    them. Any other combination would be a silent difference.
    """
    p = "process.capabilities"
    bounding = _cap_names(caps.get("bounding"), f"{p}.bounding")
    for key in ("effective", "permitted"):
        have = _cap_names(caps.get(key), f"{p}.{key}")
        want = bounding if uid == 0 else set()
        if key in caps and have != want:
            who = "root" if uid == 0 else f"uid {uid}"
            raise _err(
                f"{p}.{key}",
                f"LXC gives {who} " + ("the bounding set" if uid == 0 else "no capabilities"),
            )
    for key in ("inheritable", "ambient"):
        # root keeps the bounding set through any exec: these sets add nothing
        # it does not have; another user would need them kept, which LXC cannot
        have = _cap_names(caps.get(key), f"{p}.{key}")
        if have and (uid != 0 or not have <= bounding):
            raise _err(f"{p}.{key}", "LXC cannot set this capability set")
    return tuple(c for c in CAP_BITS if c in bounding)


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
            raise _err(f"{path}[{i}]", f"mount option {o!r} is not one LXC passes on")
    return out


def _mounts(entries: list[Any]) -> tuple[str, list[tuple[int, str]], list[BindTarget]]:
    """(lxc.mount.auto, mount entries with a ``{target}`` slot, the targets to create)."""
    # proc read-write: the config's readonlyPaths say what is read-only (runc's way)
    proc, sys_, cgroup = "proc:rw", "sys:ro", "cgroup:ro"
    lines: list[tuple[int, str]] = []
    targets: list[BindTarget] = []
    for i, m in enumerate(entries):
        m = _obj(m, f"mounts[{i}]")
        dest = _str(m.get("destination", ""), f"mounts[{i}].destination")
        if not dest.startswith("/") or ".." in dest.split("/"):
            raise _err(f"mounts[{i}].destination", f"{dest!r} is not an absolute clean path")
        dest = "/" + "/".join(p for p in dest.split("/") if p)
        kind = _str(m.get("type", "") or "", f"mounts[{i}].type")
        source = _str(m.get("source", "") or "", f"mounts[{i}].source")
        opts = _mount_opts(_strs(m.get("options"), f"mounts[{i}].options"), f"mounts[{i}].options")
        _unsupported(m, ("uidMappings", "gidMappings"), f"mounts[{i}].", "LXC cannot idmap it")
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
                raise _err(f"mounts[{i}].source", "a bind mount needs an absolute source")
            if not os.path.exists(source):
                raise _err(f"mounts[{i}].source", f"{source} does not exist")
            if "bind" not in opts and "rbind" not in opts:
                opts.insert(0, "bind")
            tkind = "dir" if os.path.isdir(source) else "file"
            fs = "none"
        else:
            if not kind:
                raise _err(f"mounts[{i}].type", "is required for a mount that is not a bind")
            if not re.match(r"^[a-z0-9_.]{1,32}\Z", kind):
                raise _err(f"mounts[{i}].type", f"{kind!r} is not a filesystem type")
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


def _devices(entries: list[Any]) -> tuple[list[str], list[BindTarget]]:
    """``linux.devices``: LXC cannot mknod a node of the config's; it binds the host's."""
    import stat

    lines = []
    for i, d in enumerate(entries):
        d = _obj(d, f"linux.devices[{i}]")
        path = _str(d.get("path", ""), f"linux.devices[{i}].path")
        kind = d.get("type")
        major = _int(d.get("major", -1), f"linux.devices[{i}].major", -1)
        minor = _int(d.get("minor", -1), f"linux.devices[{i}].minor", -1)
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
            raise _err(
                f"linux.devices[{i}]",
                f"LXC cannot create {path}; it can only bind the host's node of that type "
                "and number at the same path",
            )
        mode = d.get("fileMode")
        owner = (d.get("uid", st.st_uid), d.get("gid", st.st_gid))
        if owner != (st.st_uid, st.st_gid) or (
            mode is not None and mode & 0o7777 != st.st_mode & 0o7777
        ):
            raise _err(
                f"linux.devices[{i}]",
                "the host node's mode or owner differs, and a bind mount keeps them",
            )
        lines.append(
            f"{fstab_escape(path)} {fstab_escape(path.lstrip('/'))} none bind,create=file 0 0"
        )
    return lines, []


def resource_lines(res: Mapping[str, Any]) -> list[str]:
    """``linux.resources`` -> ``lxc.cgroup.*`` (v1, this host) and ``lxc.cgroup2.*`` keys."""
    out: list[tuple[str, str, str]] = []  # (v1 key, v2 key, value); "" = no such key

    def num(v: Any, path: str, lo: int = -1) -> str:
        return str(_int(v, f"linux.resources.{path}", lo))

    mem = _obj(res.get("memory"), "linux.resources.memory")
    if mem.get("limit") is not None:
        out.append(("memory.limit_in_bytes", "memory.max", num(mem["limit"], "memory.limit")))
    if mem.get("reservation") is not None:
        v = num(mem["reservation"], "memory.reservation")
        out.append(("memory.soft_limit_in_bytes", "memory.low", v))
    if mem.get("swap") is not None:
        out.append(("memory.memsw.limit_in_bytes", "", num(mem["swap"], "memory.swap")))
    if mem.get("swappiness") is not None:
        v = num(mem["swappiness"], "memory.swappiness", 0)
        out.append(("memory.swappiness", "", v))
    if mem.get("disableOOMKiller") is True:
        out.append(("memory.oom_control", "", "1"))
    _unsupported(
        mem,
        ("kernel", "kernelTCP", "useHierarchy", "checkBeforeUpdate"),
        "linux.resources.memory.",
        "LXC has no such key",
    )
    cpu = _obj(res.get("cpu"), "linux.resources.cpu")
    if cpu.get("shares") is not None:
        out.append(("cpu.shares", "", num(cpu["shares"], "cpu.shares", 2)))
    if cpu.get("quota") is not None or cpu.get("period") is not None:
        quota = num(cpu.get("quota", -1), "cpu.quota")
        period = num(cpu.get("period", 100000), "cpu.period", 1000)
        out.append(("cpu.cfs_period_us", "", period))
        out.append(("cpu.cfs_quota_us", "cpu.max", quota))
        out[-1] = ("cpu.cfs_quota_us", "cpu.max", quota)
    for key, v1 in (
        ("realtimeRuntime", "cpu.rt_runtime_us"),
        ("realtimePeriod", "cpu.rt_period_us"),
    ):
        if cpu.get(key) is not None:
            out.append((v1, "", num(cpu[key], f"cpu.{key}")))
    for key, v1 in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            val = _str(cpu[key], f"linux.resources.cpu.{key}")
            if not re.match(r"^[0-9,-]{1,256}\Z", val):
                raise _err(f"linux.resources.cpu.{key}", f"{val!r} is not a CPU list")
            out.append((v1, v1, val))
    _unsupported(cpu, ("idle", "burst"), "linux.resources.cpu.", "cgroup v1 has no such key")
    pids = _obj(res.get("pids"), "linux.resources.pids")
    if pids.get("limit") is not None:
        lim = _int(pids["limit"], "linux.resources.pids.limit", -1)
        out.append(("pids.max", "pids.max", "max" if lim <= 0 else str(lim)))
    blkio = _obj(res.get("blockIO"), "linux.resources.blockIO")
    if blkio.get("weight") is not None:
        out.append(("blkio.weight", "io.bfq.weight", num(blkio["weight"], "blockIO.weight", 10)))
    _unsupported(
        blkio,
        (
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ),
        "linux.resources.blockIO.",
        "not translated to LXC keys",
    )
    for i, h in enumerate(_list(res.get("hugepageLimits"), "linux.resources.hugepageLimits")):
        h = _obj(h, f"linux.resources.hugepageLimits[{i}]")
        size = _str(h.get("pageSize", ""), f"linux.resources.hugepageLimits[{i}].pageSize")
        if not re.match(r"^[0-9]{1,4}[KMG]B\Z", size):
            raise _err(f"linux.resources.hugepageLimits[{i}].pageSize", f"{size!r}")
        v = num(h.get("limit"), f"hugepageLimits[{i}].limit", 0)
        out.append((f"hugetlb.{size}.limit_in_bytes", f"hugetlb.{size}.max", v))
    _unsupported(res, ("network", "rdma"), "linux.resources.", "LXC has no such key")
    lines = []
    for v1, v2, value in out:
        if v1:
            lines.append(f"lxc.cgroup.{v1} = {value}")
        if v2:
            lines.append(f"lxc.cgroup2.{v2} = {value}")
    for key, value in _obj(res.get("unified"), "linux.resources.unified").items():
        if not _CGROUP_KEY.match(key):
            raise _err(f"linux.resources.unified.{key}", "is not a cgroup file name")
        lines.append(f"lxc.cgroup2.{key} = {_str(value, f'linux.resources.unified.{key}')}")
    rules = _list(res.get("devices"), "linux.resources.devices")
    if rules:
        for i, r in enumerate(rules):
            r = _obj(r, f"linux.resources.devices[{i}]")
            kind = r.get("type") or "a"
            if kind not in ("a", "b", "c"):
                raise _err(f"linux.resources.devices[{i}].type", f"{kind!r}")
            access = r.get("access") or "rwm"
            if not re.match(r"^[rwm]{1,3}\Z", str(access)):
                raise _err(f"linux.resources.devices[{i}].access", f"{access!r}")
            major = r.get("major")
            minor = r.get("minor")
            maj = "*" if major is None or major == -1 else str(_int(major, "major", 0))
            mnr = "*" if minor is None or minor == -1 else str(_int(minor, "minor", 0))
            rule = "a" if kind == "a" and maj == mnr == "*" else f"{kind} {maj}:{mnr} {access}"
            verb = "allow" if r.get("allow") is True else "deny"
            if kind == "a" and rule != "a":
                rule = f"a {maj}:{mnr} {access}"
            lines.append(f"lxc.cgroup.devices.{verb} = {rule}")
            lines.append(f"lxc.cgroup2.devices.{verb} = {rule}")
    return lines
