"""Render a ContainerSpec as a plain LXC config (``lxc.*`` keys).

An LXC config cannot carry every argv: LXC splits ``lxc.execute.cmd`` on
spaces and knows only whole-word quoting. So the exact process is written as
NUL-separated strings to ``ctr/argv`` and ``ctr/env`` in the container's state
directory; ``ctr/`` is bind-mounted read-only at ``/.lxcri`` inside the
container, and ``lxc.execute.cmd`` points at the static shim ``/.lxcri/init``
(``hooks/lxcri-init.c``; one shared copy, bind-mounted read-only there).

The init shim contract (``/.lxcri/init``)
    ``/.lxcri/argv`` holds ``argv[0] NUL argv[1] NUL ...``; ``/.lxcri/env``
    the complete environment as ``KEY=VALUE NUL ...``. The shim execs argv
    with exactly that environment, searching ``PATH`` of that environment
    when ``argv[0]`` has no ``/``; it exits 127 (not found) or 126 (not
    executable) with a docker-like message otherwise. PID 1 duties (reaping,
    signal forwarding) belong to LXC's ``init.lxc`` that ``lxc-execute``
    runs (so ``--init`` is accepted and changes nothing). ``/.lxcri/user``
    holds ``UID NUL GID NUL GROUP NUL ...``: the shim, started as the
    container's root, sets exactly those supplementary groups, then the gid
    and uid (LXC applies ``lxc.init.groups`` only to privileged containers,
    and a process already switched to UID cannot set its groups). Without
    CAP_SETUID/CAP_SETGID in the kept capabilities the shim could not switch,
    so LXC does (``lxc.init.uid``/``gid``) and there is no user file. cwd and
    no-new-privileges are LXC's ``lxc.init.cwd`` and ``lxc.no_new_privs``.
    ``process.json`` in the state directory records the same process for
    people and ``inspect``.

Volumes: ``Mount.kind == "bind"`` mounts use ``source`` directly; named and
anonymous volumes need a host directory from the caller in ``volume_paths``
(keyed by the volume name, or by the target path for anonymous volumes).

``network.ip == "dhcp"`` leaves the interface unconfigured here: DHCP is the
network hook's job. An OVS VLAN tag, trunks and a rate limit are set by the
``net-up`` hook (``lxc.net.*.veth.vlan.id`` works only on Linux bridges with
VLAN filtering, which this kernel lacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lxcri_core.errors import SpecError
from lxcri_core.security.lsm import APPARMOR_DEFAULT
from lxcri_core.security.seccomp import BASE_DENY, default_profile
from lxcri_core.spec.etc_files import etc_files
from lxcri_core.spec.model import ContainerSpec, Device, Mount, TmpfsMount

#: Where the state directory appears inside the container.
STATE_MOUNT = "/.lxcri"
DEFAULT_INIT_SHIM = STATE_MOUNT + "/init"
ARGV_FILE = "process.json"
#: Host-side folder (in the state dir) mounted at STATE_MOUNT in the container.
CTR_DIR = "ctr"
SECCOMP_FILE = "seccomp"
#: CPU bandwidth period (µs) for quota-based CPU limits.
CPU_PERIOD = 100000

#: The start of lxcri's default seccomp profile (LXC syntax), what every container gets;
#: ``security.seccomp.default_profile`` adds the rules that depend on the container.
DEFAULT_SECCOMP = (
    "\n".join(
        ["2", "denylist", "reject_force_umount", "[all]", *(f"{n} errno 1" for n in BASE_DENY)]
    )
    + "\n"
)

#: The device nodes a container may use (LXC's common.conf list).
_DEVICES = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
)
_FUSE_DEVICE = "c 10:229 rwm"


@dataclass(frozen=True)
class LxcConfig:
    """A rendered LXC config plus the files it refers to in the state directory.

    ``files`` maps a file name (relative to ``state_dir``) to its content;
    the caller writes them (crash-safely) before starting the container.
    """

    text: str
    files: Mapping[str, bytes] = field(default_factory=dict)

    def values(self, key: str) -> list[str]:
        """Every value of ``key`` in order (keys may repeat)."""
        out = []
        for line in self.text.splitlines():
            k, sep, v = line.partition(" = ")
            if sep and k == key:
                out.append(v)
        return out

    def value(self, key: str) -> str | None:
        """The last value of ``key``, or None."""
        vals = self.values(key)
        return vals[-1] if vals else None


def process_json(spec: ContainerSpec) -> bytes:
    """The content of ``process.json`` (the process, for people and ``inspect``)."""
    doc = {
        "version": 1,
        "args": list(spec.args),
        "env": list(spec.env),
        "cwd": spec.working_dir,
        "uid": spec.user.uid,
        "gid": spec.user.gid,
        "additional_gids": list(spec.user.additional_gids),
        "no_new_privileges": spec.security.no_new_privileges,
        "stop_signal": spec.stop_signal,
        "tty": spec.tty,
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def user_file(spec: ContainerSpec) -> bytes:
    """The content of ``ctr/user``: uid, gid and supplementary gids for the shim."""
    u = spec.user
    return nul_joined([str(u.uid), str(u.gid), *(str(g) for g in u.additional_gids)])


def tmpfs_options(t: TmpfsMount) -> str:
    """The mount options of a tmpfs, from parsed values only (nothing passed through)."""
    opts = list(t.flags)
    if t.size is not None:
        opts.append(f"size={t.size}")
    opts.append(f"mode={t.mode if t.mode is not None else 0o1777:o}")
    for key, value in (("uid", t.uid), ("gid", t.gid), ("nr_inodes", t.nr_inodes)):
        if value is not None:
            opts.append(f"{key}={value}")
    return ",".join(opts)


def device_rule(d: Device) -> str:
    """The device cgroup rule of a ``--device`` (its host node's type and numbers)."""
    if d.kind not in ("c", "b") or d.major < 0 or d.minor < 0:
        raise SpecError(f"--device {d.path}: the host node was not looked up (create does it)")
    return f"{d.kind} {d.major}:{d.minor} {d.permissions}"


def nul_joined(items: tuple[str, ...] | list[str]) -> bytes:
    """Strings as the shim reads them: each one followed by a NUL byte."""
    for item in items:
        if "\0" in item:
            raise SpecError(f"argument or environment entry contains a NUL byte: {item!r}")
    return b"".join(item.encode() + b"\0" for item in items)


def fstab_escape(path: str) -> str:
    """Escape a path for an fstab-style ``lxc.mount.entry`` (spaces as ``\\040``)."""
    out = []
    for ch in path:
        if ch in " \t\n\\":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return "".join(out)


def _check_value(key: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise SpecError(f"LXC config value for {key} contains a newline: {value!r}")
    return value


def mount_kind(m: Mount, source: str) -> str:
    """``file`` for a bind mount of a host file, else ``dir``."""
    return "file" if m.kind == "bind" and Path(source).is_file() else "dir"


def _mount_source(m: Mount, volume_paths: Mapping[str, Path]) -> str:
    if m.kind == "bind":
        return m.source
    key = m.source if m.kind == "volume" else m.target
    try:
        return str(volume_paths[key])
    except KeyError:
        what = f"volume {m.source!r}" if m.kind == "volume" else f"anonymous volume at {m.target}"
        raise SpecError(
            f"{what} has no host directory; create the volume and pass its path"
        ) from None


def render_lxc_config(
    spec: ContainerSpec,
    *,
    name: str,
    rootfs_path: Path,
    state_dir: Path,
    init_shim_path: str = DEFAULT_INIT_SHIM,
    volume_paths: Mapping[str, Path] | None = None,
    seccomp_path: Path | None = None,
    host_resolv_conf: str | None = None,
    hooks: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    mount_targets: Mapping[str, str] | None = None,
    init_shim_source: Path | None = None,
) -> LxcConfig:
    """Render ``spec`` as an LXC config for container ``name``.

    ``rootfs_path`` is the host directory of the container's root;
    ``state_dir`` the host directory holding ``ctr/argv``, ``ctr/env`` and friends,
    mounted at ``/.lxcri``; ``init_shim_path`` is the shim's path inside
    the container. ``seccomp_path`` overrides where the default seccomp
    profile is read from (else it is returned in ``files`` as ``seccomp``).
    ``host_resolv_conf`` is the host's /etc/resolv.conf text; when given,
    ``resolv.conf``, ``hosts`` and ``hostname`` are returned in ``files`` and
    bind-mounted over the container's. ``mount_targets`` maps container
    paths (``/.lxcri``, ``/etc/hosts``, volume targets) to rootfs-relative
    targets the caller created already (``containers.inroot``); those entries
    get no ``create=`` option, since LXC would create through symlinks on the
    host. Without it LXC creates them. ``init_shim_source`` is the host's
    one shared copy of the shim, bind-mounted read-only over ``ctr/init``
    (an empty file the caller creates as the mount point), so no container
    carries a copy of its own nor can change the one all share. ``hooks`` maps an LXC hook type
    (``pre-start``, ``start-host``, ``post-stop``...) to a command; ``net-up`` is
    the interface's ``lxc.net.0.script.up`` instead. Nothing is written to disk.
    """
    if not init_shim_path.startswith("/"):
        raise SpecError(
            f"init shim path {init_shim_path!r} must be absolute (inside the container)"
        )
    lines: list[str] = [
        f"# {name}: generated by lxcri from its ContainerSpec; edits are overwritten"
    ]
    files: dict[str, bytes] = {
        ARGV_FILE: process_json(spec),
        f"{CTR_DIR}/argv": nul_joined(spec.args),
        f"{CTR_DIR}/env": nul_joined(spec.env),
    }
    if spec.security.shim_sets_ids:
        files[f"{CTR_DIR}/user"] = user_file(spec)

    def add(key: str, value: object) -> None:
        lines.append(f"{key} = {_check_value(key, str(value))}")

    sec, res, net = spec.security, spec.resources, spec.network
    add("lxc.uts.name", spec.hostname)
    add("lxc.rootfs.path", f"dir:{rootfs_path}")
    for idmap in sec.idmaps if sec.unprivileged else ():
        add("lxc.idmap", f"{idmap.kind} {idmap.start} {idmap.host} {idmap.count}")

    # process
    add("lxc.init.cmd", init_shim_path)
    add("lxc.execute.cmd", init_shim_path)
    add("lxc.init.cwd", spec.working_dir)
    if not spec.security.shim_sets_ids:  # else the shim switches, from ctr/user
        add("lxc.init.uid", spec.user.uid)
        add("lxc.init.gid", spec.user.gid)
    for item in spec.env:
        value = item.partition("=")[2]
        # lxc.environment strips edge whitespace and ends at a newline; the shim
        # sets those exactly from ctr/env instead
        if "\n" not in item and "\r" not in item and value == value.strip():
            add("lxc.environment", item)
    add("lxc.signal.halt", spec.stop_signal)
    add("lxc.signal.stop", "SIGKILL")
    add("lxc.tty.max", 0)
    add("lxc.pty.max", 1024)
    add("lxc.autodev", 1)
    add("lxc.ephemeral", 0)

    # filesystems
    if sec.nesting:
        add("lxc.mount.auto", "proc:rw sys:rw cgroup:rw")
        add("lxc.apparmor.allow_nesting", 1)
    elif sec.unprivileged:
        add("lxc.mount.auto", "proc:mixed sys:rw cgroup:mixed")
    else:
        add("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed")
    made = mount_targets

    def target_of(path: str, kind: str) -> tuple[str, str]:
        """(fstab target, ``,create=...`` or nothing) of a container path."""
        if made is not None:
            if path not in made:
                raise SpecError(f"mount target {path} was not prepared in the rootfs")
            return fstab_escape(made[path]), ""
        return fstab_escape(path.lstrip("/")), f",create={kind}"

    tgt, create = target_of(STATE_MOUNT, "dir")
    add(
        "lxc.mount.entry",
        f"{fstab_escape(str(state_dir / CTR_DIR))} {tgt} none bind,ro{create} 0 0",
    )
    if init_shim_source is not None:
        shim_tgt = f"{tgt.rstrip('/')}/{DEFAULT_INIT_SHIM.rsplit('/', 1)[1]}"
        add(
            "lxc.mount.entry",
            f"{fstab_escape(str(init_shim_source))} {shim_tgt} none bind,ro 0 0",
        )
    if host_resolv_conf is not None:
        for fname, text in etc_files(net, spec.hostname, spec.domainname, host_resolv_conf).items():
            files[fname] = text.encode()
            src = fstab_escape(str(state_dir / fname))
            tgt, create = target_of(f"/etc/{fname}", "file")
            add("lxc.mount.entry", f"{src} {tgt} none bind{create} 0 0")
    paths = volume_paths or {}
    for m in sorted(spec.mounts, key=lambda m: (m.target.count("/"), m.target)):
        src = _mount_source(m, paths)
        tgt, create = target_of(m.target, mount_kind(m, src))
        opts = f"bind{create}" + (",ro" if m.read_only else "")
        add("lxc.mount.entry", f"{fstab_escape(src)} {tgt} none {opts} 0 0")
    for t in spec.tmpfs:
        if t.target.startswith("/dev/"):  # inside the /dev tmpfs LXC makes (autodev)
            tgt, create = fstab_escape(t.target.lstrip("/")), ",create=dir"
        else:
            tgt, create = target_of(t.target, "dir")
        add("lxc.mount.entry", f"tmpfs {tgt} tmpfs {tmpfs_options(t)}{create} 0 0")
    if spec.read_only:
        add("lxc.rootfs.options", "ro")
    for d in spec.devices:
        # the node in LXC's own /dev tmpfs: nothing of the image is on the way
        tgt = fstab_escape(d.container_path.lstrip("/"))
        add("lxc.mount.entry", f"{fstab_escape(d.path)} {tgt} none bind,create=file 0 0")

    # network
    if net.mode == "none":
        add("lxc.net.0.type", "empty")
    else:
        add("lxc.net.0.type", "veth")
        add("lxc.net.0.link", net.bridge)
        add("lxc.net.0.flags", "up")
        add("lxc.net.0.name", net.name)
        if net.host_veth:  # Proxmox's vethVMIDiN (network.veth)
            add("lxc.net.0.veth.pair", net.host_veth)
        if hooks and hooks.get("net-up"):  # tag=/trunks=/rate=: network.netup on the host end
            add("lxc.net.0.script.up", hooks["net-up"])
        if net.hwaddr:
            add("lxc.net.0.hwaddr", net.hwaddr)
        if net.mtu:
            add("lxc.net.0.mtu", net.mtu)
        if "/" in net.ip:
            add("lxc.net.0.ipv4.address", net.ip)
            if net.gateway:
                add("lxc.net.0.ipv4.gateway", net.gateway)
        if "/" in net.ip6:
            add("lxc.net.0.ipv6.address", net.ip6)
            if net.gateway6:
                add("lxc.net.0.ipv6.gateway", net.gateway6)

    # security
    if sec.capabilities is not None:
        keep = " ".join(c.lower() for c in sec.capabilities) or "none"
        add("lxc.cap.keep", keep)
    if sec.no_new_privileges:
        add("lxc.no_new_privs", 1)
    if sec.seccomp == "default":
        if seccomp_path is None:
            profile = default_profile(
                sec.capabilities, keyctl=sec.keyctl, nesting=sec.nesting, privileged=sec.privileged
            )
            files[SECCOMP_FILE] = profile.encode()
            seccomp_path = state_dir / SECCOMP_FILE
        add("lxc.seccomp.profile", seccomp_path)
    elif sec.seccomp_profile:  # the user's, read and translated at create
        files[SECCOMP_FILE] = sec.seccomp_profile.encode()
        add("lxc.seccomp.profile", state_dir / SECCOMP_FILE)
    elif sec.seccomp != "unconfined":
        add("lxc.seccomp.profile", sec.seccomp)
    # AppArmor as Proxmox writes it (make_apparmor_config); LXC ignores these keys on a
    # kernel without AppArmor
    add("lxc.apparmor.profile", sec.apparmor_profile or APPARMOR_DEFAULT)
    if not sec.apparmor_profile or sec.apparmor_profile == APPARMOR_DEFAULT:
        if not sec.nesting:  # a container must not chown /proc or /sys for the host
            add("lxc.apparmor.raw", "deny mount -> /proc/,")
            add("lxc.apparmor.raw", "deny mount -> /sys/,")
        if sec.fuse:
            add("lxc.apparmor.raw", "mount fstype=fuse,")
    if sec.selinux_context:
        add("lxc.selinux.context", sec.selinux_context)
    if sec.mknod and sec.unprivileged:
        raise SpecError(
            "features mknod=1 needs Proxmox's lxc-syscalld (the pve-local or pve-api "
            "backend); on plain LXC an unprivileged container cannot create device nodes"
        )
    if sec.privileged:
        # an unprivileged container cannot mknod anyway; LXC's userns.conf clears these.
        # There a --device node is usable as far as its host permissions let the mapped ids.
        rules = (*_DEVICES, _FUSE_DEVICE) if sec.fuse else _DEVICES
        rules = (*rules, *(device_rule(d) for d in spec.devices))
        for prefix in ("lxc.cgroup", "lxc.cgroup2"):
            add(f"{prefix}.devices.deny", "a")
            for rule in rules:
                add(f"{prefix}.devices.allow", rule)
    elif sec.fuse and not any(d.container_path == "/dev/fuse" for d in spec.devices):
        add("lxc.mount.entry", "/dev/fuse dev/fuse none bind,create=file,optional 0 0")

    # cgroup limits, v1 keys (this machine, PVE 6 era) and v2 keys (PVE 7+)
    if res.memory is not None:
        add("lxc.cgroup.memory.limit_in_bytes", res.memory)
        add("lxc.cgroup2.memory.max", res.memory)
        if res.swap is not None:
            add("lxc.cgroup2.memory.swap.max", res.swap)
    if res.pids_limit is not None:
        add("lxc.cgroup.pids.max", res.pids_limit)
        add("lxc.cgroup2.pids.max", res.pids_limit)
    cpus = res.cpus if res.cpus is not None else res.cores
    if cpus is not None:
        quota = round(cpus * CPU_PERIOD)
        add("lxc.cgroup.cpu.cfs_period_us", CPU_PERIOD)
        add("lxc.cgroup.cpu.cfs_quota_us", quota)
        add("lxc.cgroup2.cpu.max", f"{quota} {CPU_PERIOD}")

    for u in spec.ulimits:
        limits = ("unlimited" if v < 0 else str(v) for v in (u.soft, u.hard))
        add(f"lxc.prlimit.{u.name}", ":".join(limits))

    if hooks:
        add("lxc.hook.version", 1)
        for kind, command in hooks.items():
            if kind != "net-up":  # lxc.net.0.script.up, above
                add(f"lxc.hook.{kind}", command)
    if log_file is not None:
        add("lxc.log.file", log_file)
    return LxcConfig("\n".join(lines) + "\n", files)
