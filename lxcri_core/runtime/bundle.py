"""An OCI bundle's ``config.json`` (runtime-spec 1.0-1.2) -> ContainerSpec + LXC keys.

The ContainerSpec carries what lxcri's own containers have too (process,
user, capabilities, rlimits, seccomp, id maps, hostname, read-only root);
``render_lxc_config`` renders it. What only an OCI bundle asks for (mounts
with their options, namespaces joined by path, sysctl, masked and read-only
paths, cgroup resources, the cgroup path, OOM score) becomes extra
``lxc.*`` lines in :class:`Bundle`. A field LXC cannot express is a
``SpecError`` naming the field: a silent drop would run a container weaker
than its config says. ``mounts`` and ``resources`` translate those parts,
``fields`` holds the readers that name the field in their errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core.errors import SpecError
from lxcri_core.runtime.fields import (
    argv_items,
    bad,
    integer,
    items,
    obj,
    text,
    texts,
    unsupported,
)
from lxcri_core.runtime.hookspec import Hook
from lxcri_core.runtime.mounts import BindTarget, translate_devices, translate_mounts
from lxcri_core.runtime.resources import resource_lines
from lxcri_core.security.caps import CAP_BITS
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
_NS_TYPES = frozenset(("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"))
_SYSCTL = re.compile(r"^[a-z0-9_][a-z0-9_./-]{0,127}\Z")
_ID = re.compile(r"^[A-Za-z0-9_+.-]{1,1024}\Z")


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
    version = text(doc.get("ociVersion", ""), "ociVersion")
    if not version.startswith("1."):
        raise bad("ociVersion", f"{version!r} is not a 1.x runtime-spec version")
    unsupported(doc, ("solaris", "windows", "vm", "zos"), "", "not a Linux container")
    root = obj(doc.get("root"), "root")
    rpath = text(root.get("path", ""), "root.path")
    if not rpath:
        raise bad("root.path", "is required")
    rootfs = Path(rpath) if rpath.startswith("/") else bundle_dir / rpath
    if not rootfs.is_dir():
        raise bad("root.path", f"{rootfs} is not a directory")
    process = obj(doc.get("process"), "process")
    linux = obj(doc.get("linux"), "linux")
    hooks = translate_hooks(obj(doc.get("hooks"), "hooks"))
    # any text: ``state`` prints them JSON-encoded, they reach no config line
    annotations = obj(doc.get("annotations"), "annotations")
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise bad(f"annotations.{k}", "must be a string")
    lines: list[str] = []

    # namespaces and ids
    user_ns, host_net, ns_lines = _namespaces(items(linux.get("namespaces"), "linux.namespaces"))
    lines += ns_lines
    idmaps = _idmaps(linux, user_ns)
    user = process_user(process)
    caps = capabilities(obj(process.get("capabilities"), "process.capabilities"), user.uid)
    seccomp_text = ""
    if linux.get("seccomp") is not None:
        from lxcri_core.security.seccomp import host_kernel
        from lxcri_core.security.seccomp import translate as seccomp_translate

        tr = seccomp_translate(obj(linux["seccomp"], "linux.seccomp"), caps, host_kernel())
        if tr.unsupported:
            raise bad("linux.seccomp", "LXC cannot express " + "; ".join(tr.unsupported))
        seccomp_text = tr.text
    security = SecuritySpec(
        privileged=not user_ns,
        idmaps=idmaps,
        capabilities=caps,
        seccomp="oci" if seccomp_text else "unconfined",
        seccomp_profile=seccomp_text,
        no_new_privileges=process.get("noNewPrivileges") is True,
        apparmor_profile=text(process.get("apparmorProfile", ""), "process.apparmorProfile"),
        selinux_context=text(process.get("selinuxLabel", ""), "process.selinuxLabel"),
        # the OCI config lists its devices itself (linux.resources.devices)
        fuse=False,
    )
    if not security.shim_sets_ids and user.additional_gids:
        raise bad(
            "process.user.additionalGids",
            "needs CAP_SETUID and CAP_SETGID in the bounding set (LXC sets no groups)",
        )

    if "oomScoreAdj" in process:
        adj = integer(process["oomScoreAdj"], "process.oomScoreAdj", -1000, 1000)
        lines.append(f"lxc.proc.oom_score_adj = {adj}")
    unsupported(
        process,
        ("ioPriority", "scheduler", "execCPUAffinity", "commandLine", "consoleSize"),
        "process.",
        "LXC cannot set it",
    )
    args = argv_items(process.get("args"), "process.args")
    if not args:
        raise bad("process.args", "is required and must not be empty")
    cwd = text(process.get("cwd", "/"), "process.cwd")
    if not cwd.startswith("/"):
        raise bad("process.cwd", "must be an absolute path")
    env = argv_items(process.get("env"), "process.env")
    for i, item in enumerate(env):
        if "=" not in item:
            raise bad(f"process.env[{i}]", "is not KEY=VALUE")

    ulimits = []
    for i, rl in enumerate(items(process.get("rlimits"), "process.rlimits")):
        rl = obj(rl, f"process.rlimits[{i}]")
        kind = text(rl.get("type", ""), f"process.rlimits[{i}].type")
        if not re.match(r"^RLIMIT_[A-Z]{2,12}\Z", kind):
            raise bad(f"process.rlimits[{i}].type", f"{kind!r} is not an RLIMIT_ name")
        soft = integer(rl.get("soft"), f"process.rlimits[{i}].soft", 0)
        hard = integer(rl.get("hard"), f"process.rlimits[{i}].hard", 0)
        big = 2**63  # RLIM_INFINITY as JSON writes it
        ulimits.append(
            Ulimit(kind[7:].lower(), -1 if soft >= big else soft, -1 if hard >= big else hard)
        )

    # linux, the rest
    ns_types = {ns.get("type") for ns in items(linux.get("namespaces"), "") if isinstance(ns, dict)}
    sysctl = {}
    for key, value in obj(linux.get("sysctl"), "linux.sysctl").items():
        if not _SYSCTL.match(key) or ".." in key or "//" in key:
            raise bad(f"linux.sysctl.{key}", "is not a sysctl name")
        _check_sysctl(key, ns_types)
        sysctl[key] = text(value, f"linux.sysctl.{key}")
    lines += resource_lines(obj(linux.get("resources"), "linux.resources"))
    cgroup_dir = ""
    if linux.get("cgroupsPath"):
        cg = text(linux["cgroupsPath"], "linux.cgroupsPath")
        if ":" in cg or ".." in cg.split("/"):
            raise bad("linux.cgroupsPath", "systemd slices (a:b:c) and '..' are not supported")
        cgroup_dir = cg.strip("/")
    unsupported(
        linux,
        ("intelRdt", "personality", "memoryPolicy", "netDevices", "timeOffsets", "mountLabel"),
        "linux.",
        "LXC cannot express it",
    )
    prop = linux.get("rootfsPropagation", "")
    if prop not in ("", "private", "rprivate", "slave", "rslave"):
        raise bad("linux.rootfsPropagation", f"{prop!r}: LXC keeps the rootfs private or slave")
    dev_lines, dev_targets = translate_devices(items(linux.get("devices"), "linux.devices"))
    masked = texts(linux.get("maskedPaths"), "linux.maskedPaths")
    readonly = texts(linux.get("readonlyPaths"), "linux.readonlyPaths")
    for what, paths in (("maskedPaths", masked), ("readonlyPaths", readonly)):
        for i, p in enumerate(paths):
            if not p.startswith("/") or ".." in p.split("/"):
                raise bad(f"linux.{what}[{i}]", f"{p!r} is not an absolute clean path")

    mount_auto, mount_lines, targets = translate_mounts(items(doc.get("mounts"), "mounts"))
    for line in dev_lines:
        mount_lines.append((-1, line))
    targets += dev_targets
    hostname = text(doc.get("hostname", ""), "hostname")
    if hostname and "uts" not in ns_types:
        raise bad("hostname", "setting a hostname needs a uts namespace")
    joined = {
        ns.get("type")
        for ns in items(linux.get("namespaces"), "")
        if isinstance(ns, dict) and ns.get("path")
    }
    if hostname and "uts" in joined:
        # as runc: the name belongs to whoever made the namespace (the pod's sandbox)
        raise bad("hostname", "setting a hostname needs a uts namespace of its own")
    if doc.get("domainname"):
        raise bad("domainname", "LXC sets no NIS domain name")
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
        raise bad(f"linux.sysctl.{key}", "no namespace holds it: it would change the host")
    if need not in ns_types:
        raise bad(
            f"linux.sysctl.{key}",
            f"without a {need} namespace of its own it would change the host's",
        )


def translate_hooks(doc: Mapping[str, Any]) -> dict[str, tuple[Hook, ...]]:
    out: dict[str, tuple[Hook, ...]] = {}
    for kind, entries in doc.items():
        if kind not in HOOK_KINDS:
            raise bad(f"hooks.{kind}", "is not an OCI hook kind")
        if kind == "startContainer" and entries:
            raise bad(
                "hooks.startContainer",
                "LXC runs no host program in the container's namespaces after pivot_root",
            )
        hooks = []
        for i, h in enumerate(items(entries, f"hooks.{kind}")):
            h = obj(h, f"hooks.{kind}[{i}]")
            path = text(h.get("path", ""), f"hooks.{kind}[{i}].path")
            if not path.startswith("/"):
                raise bad(f"hooks.{kind}[{i}].path", "must be absolute")
            timeout = h.get("timeout")
            if timeout is not None:
                timeout = integer(timeout, f"hooks.{kind}[{i}].timeout", 1, 86400)
            hooks.append(
                Hook(
                    path,
                    texts(h.get("args"), f"hooks.{kind}[{i}].args"),
                    texts(h.get("env"), f"hooks.{kind}[{i}].env"),
                    timeout,
                )
            )
        out[kind] = tuple(hooks)
    return out


def _namespaces(entries: list[Any]) -> tuple[bool, bool, list[str]]:
    """(user namespace?, host network?, lxc.namespace.* lines)."""
    seen: dict[str, str] = {}
    for i, ns in enumerate(entries):
        ns = obj(ns, f"linux.namespaces[{i}]")
        kind = text(ns.get("type", ""), f"linux.namespaces[{i}].type")
        if kind not in _NS_TYPES:
            raise bad(f"linux.namespaces[{i}].type", f"{kind!r} is not a namespace type")
        if kind in seen:
            raise bad(f"linux.namespaces[{i}]", f"{kind} is listed twice")
        seen[kind] = text(ns.get("path", ""), f"linux.namespaces[{i}].path")
    if "mount" not in seen:
        raise bad("linux.namespaces", "LXC always gives a container its own mount namespace")
    if seen["mount"]:
        raise bad("linux.namespaces", "LXC cannot join an existing mount namespace")
    if "time" in seen:
        raise bad("linux.namespaces", "LXC 5 cannot create or join a time namespace")
    if "pid" not in seen:
        raise bad("linux.namespaces", "LXC 5 cannot keep the host's pid namespace")
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
            raise bad("linux.namespaces", f"{kind} path {path!r} is not absolute")
        if kind == "user":
            raise bad("linux.namespaces", "LXC cannot join an existing user namespace")
        name = "net" if kind == "network" else kind
        lines.append(f"lxc.namespace.share.{name} = {path}")
    return "user" in seen, host_net, lines


def _idmaps(linux: Mapping[str, Any], user_ns: bool) -> tuple[IdMap, ...]:
    maps: list[IdMap] = []
    for key, kind in (("uidMappings", "u"), ("gidMappings", "g")):
        for i, m in enumerate(items(linux.get(key), f"linux.{key}")):
            m = obj(m, f"linux.{key}[{i}]")
            try:
                maps.append(
                    IdMap(
                        host=integer(m.get("hostID"), f"linux.{key}[{i}].hostID", 0),
                        count=integer(m.get("size"), f"linux.{key}[{i}].size", 1),
                        start=integer(m.get("containerID"), f"linux.{key}[{i}].containerID", 0),
                        kind=kind,  # type: ignore[arg-type]
                    )
                )
            except SpecError as e:
                if e.msg.startswith("config.json"):
                    raise
                raise bad(f"linux.{key}[{i}]", e.msg) from None
    if user_ns and not {m.kind for m in maps} >= {"u", "g"}:
        raise bad("linux.uidMappings", "a user namespace needs uid and gid mappings")
    if maps and not user_ns:
        raise bad("linux.uidMappings", "mappings without a user namespace")
    return tuple(maps)


def process_user(process: Mapping[str, Any]) -> User:
    u = obj(process.get("user"), "process.user")
    if u.get("umask") is not None:
        raise bad("process.user.umask", "LXC cannot set the process's umask")
    if u.get("username"):
        raise bad("process.user.username", "only for Windows containers")
    groups = tuple(
        integer(g, f"process.user.additionalGids[{i}]", 0, 2**32 - 2)
        for i, g in enumerate(items(u.get("additionalGids"), "process.user.additionalGids"))
    )
    return User(
        uid=integer(u.get("uid", 0), "process.user.uid", 0, 2**32 - 2),
        gid=integer(u.get("gid", 0), "process.user.gid", 0, 2**32 - 2),
        additional_gids=groups,
    )


def _cap_names(v: Any, path: str) -> set[str]:
    out = set()
    for i, name in enumerate(items(v, path)):
        name = text(name, f"{path}[{i}]").upper()
        short = name[4:] if name.startswith("CAP_") else name
        if short not in CAP_BITS:
            raise bad(f"{path}[{i}]", f"unknown capability {name}")
        out.add(short)
    return out


def capabilities(caps: Mapping[str, Any], uid: int) -> tuple[str, ...]:
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
            raise bad(
                f"{p}.{key}",
                f"LXC gives {who} " + ("the bounding set" if uid == 0 else "no capabilities"),
            )
    for key in ("inheritable", "ambient"):
        # root keeps the bounding set through any exec: these sets add nothing
        # it does not have; another user would need them kept, which LXC cannot
        have = _cap_names(caps.get(key), f"{p}.{key}")
        if have and (uid != 0 or not have <= bounding):
            raise bad(f"{p}.{key}", "LXC cannot set this capability set")
    return tuple(c for c in CAP_BITS if c in bounding)
