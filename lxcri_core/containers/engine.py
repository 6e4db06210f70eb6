"""Containers on plain LXC: the operations the CLI calls.

``create`` turns an image and ``RunOptions`` into a container: a rootfs from
the storage backend (layers shared), an address on lxcri's bridge, volumes,
the LXC config with lxcri's hooks, and the record that marks it as lxcri's
(written last, so a crash mid-create leaves nothing the hooks act on).
``start`` hands the container to its supervisor (restart policy,
healthcheck, output to ``console.log``); ``run_foreground`` runs it attached
to the terminal and returns the process's exit status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_core.config import Config, config_to_dict
from lxcri_core.containers import lxc
from lxcri_core.containers.paths import hook_command, libexec
from lxcri_core.containers.private import (
    pass_old_volumes,
    passed_volumes,
    secure_root,
    secure_state_dir,
    shared_shim,
    unmount_volumes,
)
from lxcri_core.containers.record import (
    STARTED,
    STOP_KILLED,
    STOP_REQUESTED,
    ContainerRecord,
    check_name,
    containers_dir,
    exit_status,
    list_records,
    load_record,
    record_exit,
    record_started,
    save_record,
    state_dir,
)
from lxcri_core.containers.status import ExitDoc, derive_status, describe
from lxcri_core.containers.subids import ensure_root_subids
from lxcri_core.containers.volume_ops import volumes_locked
from lxcri_core.containers.volumes import prepare_volumes, remove_anonymous
from lxcri_core.errors import BackendError, ImageNotFound, RegistryError
from lxcri_core.fsutil import atomic_write, flocked, is_mountpoint
from lxcri_core.log import get_logger
from lxcri_core.spec.model import ContainerSpec, PortMapping

log = get_logger(__name__)

#: The effective config of the ``lxcri start`` that spawned the supervisor (0600).
SUPERVISOR_CONFIG = "supervisor-config.json"


def lxcpath(cfg: Config) -> Path:
    return containers_dir(cfg.root)


# -- create ---------------------------------------------------------------------
def _resolve_image(cfg: Config, image: str, pull_missing: bool, insecure: bool) -> Any:
    from lxcri_core.store import Store
    from lxcri_core.store.resolve import resolve

    store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout).init()
    try:
        return store, resolve(store, image)
    except ImageNotFound:
        if not pull_missing:
            raise
    from lxcri_core.registry import pull

    try:
        return store, pull(cfg, image, insecure=insecure)
    except RegistryError as e:
        # say first that the image is not here: the registry's reason alone misleads
        raise ImageNotFound(
            f"image {image} is not in the local store and pulling it failed ({e}); "
            "check the name, or `lxcri import`/`lxcri pull` it first"
        ) from None


def _new_id() -> str:
    return secrets.token_hex(32)


def create(
    cfg: Config,
    image: str,
    opts: Any,
    *,
    storage: str | None = None,
    pull_missing: bool = True,
    insecure: bool = False,
    auto_remove: bool = False,
) -> ContainerRecord:
    """Create a container from ``image`` with ``opts`` (a ``spec.options.RunOptions``)."""
    cid = _new_id()
    name = check_name(opts.name or f"ct-{cid[:8]}")
    containers_dir(cfg.root).mkdir(parents=True, exist_ok=True)
    # two creates of one name: the second waits, then finds the name taken;
    # SIGTERM (a killed `lxcri create`) unwinds like an error, leaking nothing;
    # `volume rm/prune` wait until the record names the volumes this one uses
    with _name_lock(cfg, name), _term_raises(), volumes_locked(cfg.root, shared=True):
        return _create_locked(
            cfg, cid, name, image, opts, storage, pull_missing, insecure, auto_remove
        )


def _name_lock(cfg: Config, name: str) -> contextlib.AbstractContextManager[None]:
    """Serialises create and remove of one container name (lock files stay: unlinking
    a lock file another process waits on would give two holders)."""
    return flocked(containers_dir(cfg.root) / ".locks" / name)


@contextlib.contextmanager
def _term_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception for the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _create_locked(
    cfg: Config,
    cid: str,
    name: str,
    image: str,
    opts: Any,
    storage: str | None,
    pull_missing: bool,
    insecure: bool,
    auto_remove: bool,
) -> ContainerRecord:
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.spec.build import build_spec
    from lxcri_core.spec.model import IdMap
    from lxcri_core.storage import open_backend

    sdir = state_dir(cfg.root, name)
    if sdir.exists():
        raise BackendError(f"a container named {name} already exists; choose another --name")
    opts = dataclasses.replace(opts, name=name)
    store, rec = _resolve_image(cfg, image, pull_missing, insecure)
    manifest = Manifest.parse(store.read_blob(rec.descriptor.digest))
    image_config = load_json(store.read_blob(manifest.config.digest), "image config")

    # A first spec decides privileged vs unprivileged, hence the id shift of the rootfs.
    # Names in USER/--user/--group-add resolve only from the rootfs, which does not
    # exist yet: the probe runs as root, the real spec below resolves them.
    probe_opts = dataclasses.replace(opts, user="0", group_add=())
    probe = build_spec(image_config, probe_opts, None, image=rec.name)
    unpriv = probe.security.unprivileged
    idmap = None
    if unpriv:
        umap = probe.security.idmaps[0]
        idmap = IdMap(umap.host, umap.count)
        ensure_root_subids(umap.host, umap.count)
    backend = open_backend(cfg, storage)
    with store.in_use():  # image prune waits: the blobs and the chain stay until the rootfs
        chain = backend.prepare_image(store, rec.descriptor.digest, idmap)
        rootfs = backend.create_rootfs(chain, cid)
    undo: list[Any] = [lambda: backend.remove_rootfs(cid)]
    try:
        secure_root(cfg.root)
        tmp = containers_dir(cfg.root) / f".{name}.creating"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        undo.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
        # the id, first: what a crash leaves behind can then be cleaned up by `rm`
        atomic_write(tmp / "id", cid.encode())
        # every backend's rootfs is mounted here by the pre-start hook: an
        # unprivileged container passes through its state dir, never the layer store
        mount_point = sdir / "rootfs"
        # mount once now: /etc/passwd for --user, image content to seed volumes
        (tmp / "rootfs").mkdir()
        seen = rootfs.mount(tmp / "rootfs") if rootfs.backend == "overlay" else rootfs.path
        try:
            _mount_points(seen, idmap.host if idmap else 0)
            spec = build_spec(image_config, opts, seen, image=rec.name)
            spec = _checked(spec)
            spec, net = _plain_lxc_network(cfg, spec, cid, opts)
            owner = idmap.host if idmap else 0
            volumes = prepare_volumes(cfg.root, cid, spec, seen, owner)
            targets = _mount_targets(seen, spec, volumes, owner)
        finally:
            if rootfs.backend == "overlay":
                rootfs.umount(tmp / "rootfs")
        undo.append(lambda: remove_anonymous(cfg.root, cid))
        record = ContainerRecord(
            id=cid,
            name=name,
            image=rec.name,
            image_digest=rec.descriptor.digest,
            storage=backend.name,
            rootfs=str(mount_point),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            spec=spec,
            bridge=net.get("bridge", ""),
            ipv4=net.get("ipv4", ""),
            ipv6=net.get("ipv6", ""),
            auto_remove=auto_remove,
            mount=_mount_command(rootfs, mount_point),
        )
        _write_lxc_files(cfg, tmp, sdir, record, passed_volumes(tmp, sdir, spec, volumes), targets)
        secure_state_dir(tmp, spec)
        os.rename(tmp, sdir)
        save_record(cfg.root, record)  # the marker: written last
    except BaseException:
        for fn in reversed(undo):
            with contextlib.suppress(Exception):
                fn()
        with contextlib.suppress(Exception):
            _release_address(cfg, cid)
        raise
    log.info("container created", name=name, id=cid, image=rec.name, storage=backend.name)
    return record


def _checked(spec: ContainerSpec) -> ContainerSpec:
    """What would only fail at start, refused at create; ``-p 80`` gets a free host port."""
    import socket

    from lxcri_core.errors import SpecError

    if spec.stop_timeout < 0:
        raise SpecError(f"--stop-timeout {spec.stop_timeout}: give 0 or more seconds")
    if spec.ports and spec.network.mode == "none":
        raise SpecError("-p needs a network: a container with --network none has no ports")
    if any(m.target == "/" for m in spec.mounts):
        raise SpecError("-v ...:/ would hide the whole root filesystem; mount below it")
    sec = spec.security.seccomp
    if sec not in ("default", "unconfined") and not os.path.isfile(sec):
        raise SpecError(f"--security-opt seccomp={sec}: no such profile file")
    from lxcri_core.network import listeners

    ports: list[PortMapping] = []
    seen: set[tuple[str, str, int]] = set()
    for p in spec.ports:
        kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
        fam = socket.AF_INET6 if ":" in p.host_ip else socket.AF_INET
        with socket.socket(fam, kind) as probe:
            try:  # a host address that is not this host's would hijack outgoing traffic
                probe.bind((p.host_ip, 0))
            except OSError:
                raise SpecError(
                    f"-p {p.host_ip}:{p.host_port}:{p.container_port}: {p.host_ip} is not an "
                    "address of this host"
                ) from None
        # -p 80: any free port, as docker does; else one no host process serves
        mine = [q.host_port for q in ports if q.protocol == p.protocol]  # never twice
        port = listeners.host_port_for(p.protocol, p.host_ip, p.host_port, mine)
        p = dataclasses.replace(p, host_port=port)
        key = (p.protocol, p.host_ip, p.host_port)
        if key in seen:
            raise SpecError(f"host port {p.host_port}/{p.protocol} is published twice")
        seen.add(key)
        ports.append(p)
    for u in spec.ulimits:
        if u.name == "nofile":
            _check_nofile(u.soft, u.hard)
    devices = tuple(_host_device(d) for d in spec.devices)
    return dataclasses.replace(spec, ports=tuple(ports), devices=devices)


def _check_nofile(soft: int, hard: int) -> None:
    """The kernel refuses more open files than fs.nr_open; say so now, not at start."""
    from lxcri_core.errors import SpecError

    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return
    if hard < 0 or hard > nr_open:
        raise SpecError(
            f"--ulimit nofile={soft}:{hard}: this host allows at most {nr_open} open files "
            "(fs.nr_open)"
        )


def _host_device(d: Any) -> Any:
    """A ``--device`` with its host node's type and numbers; refuses anything but a device
    node reached without a symbolic link (``/dev/disk/by-id/...`` links: give the target)."""
    import stat

    from lxcri_core.errors import SpecError

    if os.path.realpath(d.path) != d.path:
        raise SpecError(
            f"--device {d.path}: a symbolic link is on the way; give the device it points to "
            f"({os.path.realpath(d.path)})"
        )
    try:
        st = os.lstat(d.path)
    except OSError as e:
        raise SpecError(f"--device {d.path}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise SpecError(f"--device {d.path}: not a device node")
    return dataclasses.replace(d, kind=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev))


def _mount_points(rootfs: Path, owner: int) -> None:
    """Create /dev, /proc and /sys in the rootfs if the image lacks them (as docker does).

    Left to LXC, an unprivileged container creates /dev itself with a mode
    that its next start cannot traverse. An existing entry (even a symlink)
    is left alone: nothing here follows a link out of the rootfs.
    """
    for name in ("dev", "proc", "sys"):
        path = rootfs / name
        if not os.path.lexists(path):
            os.mkdir(path, 0o755)
            os.chown(path, owner, owner, follow_symlinks=False)
            os.chmod(path, 0o755)


def _mount_command(rootfs: Any, target: Path) -> tuple[str, ...]:
    """What the pre-start hook mounts at ``target`` (empty: nothing to mount)."""
    return rootfs.mount_record(target)  # type: ignore[no-any-return]


def _plain_lxc_network(
    cfg: Config, spec: ContainerSpec, cid: str, opts: Any
) -> tuple[ContainerSpec, dict[str, str]]:
    """On plain LXC the default network is lxcri's own bridge with an address from lxcri."""
    net = spec.network
    if net.mode == "none":
        return spec, {}
    if opts.bridge:
        if not Path(f"/sys/class/net/{net.bridge}/bridge").is_dir():
            from lxcri_core.errors import SpecError

            raise SpecError(f"--network bridge={net.bridge}: no such bridge on this host")
        return spec, {"bridge": net.bridge, "ipv4": net.static_ipv4}
    from lxcri_core.network import bridge, ipam

    v6 = cfg.bridge_subnet6 or None
    # the fast path checks IPv4 only; a dual-stack bridge goes the full way
    ready = None if v6 else bridge.bridge_ready(cfg.bridge, cfg.bridge_subnet)
    br = ready or bridge.ensure_bridge(cfg.bridge, cfg.bridge_subnet, v6)
    pool = ipam.Ipam.from_config(cfg, br.name, br.subnet, br.ipv6_subnet)
    # --ip is leased like any address, so the pool never hands it out twice
    lease = pool.reserve(cid, net.static_ipv4) if net.static_ipv4 else pool.allocate_lease(cid)
    ip = net.ip if "/" in net.ip else str(lease.ipv4)
    new_net = dataclasses.replace(
        net, bridge=br.name, ip=ip, gateway=net.gateway or str(lease.gateway)
    )
    if lease.ipv6 is not None and br.ipv6_gateway is not None and "/" not in net.ip6:
        new_net = dataclasses.replace(
            new_net, ip6=str(lease.ipv6), gateway6=net.gateway6 or str(br.ipv6_gateway.ip)
        )
    return dataclasses.replace(spec, network=new_net), {
        "bridge": br.name,
        "ipv4": ip.split("/")[0],
        "ipv6": str(lease.ipv6.ip) if lease.ipv6 else "",
    }


def ensure_bridge_for(cfg: Config, rec: ContainerRecord) -> None:
    """Before a start: lxcri's bridge may be gone (a reboot, an admin's `ip link del`)."""
    if rec.spec.network.mode != "bridge" or rec.bridge != cfg.bridge:
        return
    from lxcri_core.network import bridge

    v6 = cfg.bridge_subnet6 or None
    if v6 or not bridge.bridge_ready(cfg.bridge, cfg.bridge_subnet):
        bridge.ensure_bridge(cfg.bridge, cfg.bridge_subnet, v6)


def _release_address(cfg: Config, cid: str) -> None:
    from lxcri_core.network import ipam

    ipam.Ipam.from_config(cfg, cfg.bridge, cfg.bridge_subnet, cfg.bridge_subnet6 or None).release(
        cid
    )


def _mount_targets(
    rootfs: Path, spec: ContainerSpec, volumes: dict[str, Path], owner: int
) -> dict[str, str]:
    """Create every bind-mount target in the rootfs, links resolved inside it (see inroot)."""
    from lxcri_core.containers.inroot import resolve_in_root
    from lxcri_core.spec.lxc_config import STATE_MOUNT, mount_kind

    targets = {STATE_MOUNT: resolve_in_root(rootfs, STATE_MOUNT, create="dir", owner=owner)}
    # the working directory exists when the process starts, as docker makes sure
    resolve_in_root(rootfs, spec.working_dir, create="dir", owner=owner)
    for fname in ("resolv.conf", "hosts", "hostname"):
        path = f"/etc/{fname}"
        targets[path] = resolve_in_root(rootfs, path, create="file", owner=owner)
    for m in spec.mounts:
        src = m.source if m.kind == "bind" else str(volumes[m.source or m.target])
        if mount_kind(m, src) == "file":
            targets[m.target] = resolve_in_root(rootfs, m.target, create="file", owner=owner)
        else:
            targets[m.target] = resolve_in_root(rootfs, m.target, create="dir", owner=owner)
    for t in spec.tmpfs:
        if not t.target.startswith("/dev/"):  # below /dev: in LXC's own tmpfs, at start
            targets[t.target] = resolve_in_root(rootfs, t.target, create="dir", owner=owner)
    return targets


def _can_remount(spec: ContainerSpec) -> bool:
    """Whether the container's root may remount a read-only bind mount writable:
    a privileged container keeping CAP_SYS_ADMIN (an unprivileged one cannot
    write a file of the host's root, whatever it remounts)."""
    caps = spec.security.capabilities
    return spec.security.privileged and (caps is None or "SYS_ADMIN" in caps)


def _write_lxc_files(
    cfg: Config,
    tmp: Path,
    final: Path,
    record: ContainerRecord,
    volumes: dict[str, Path],
    targets: dict[str, str],
) -> None:
    from lxcri_core.spec.lxc_config import ARGV_FILE, CTR_DIR, SECCOMP_FILE, render_lxc_config

    shim = None if _can_remount(record.spec) else shared_shim(cfg.root)
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    hook = hook_command()
    rendered = render_lxc_config(
        record.spec,
        name=record.name,
        rootfs_path=Path(record.rootfs),
        state_dir=final,
        volume_paths=volumes,
        host_resolv_conf=resolv,
        hooks={"pre-start": hook, "post-stop": hook},
        log_file=final / "lxc.log",
        mount_targets=targets,
        init_shim_source=shim,
    )
    (tmp / CTR_DIR).mkdir(mode=0o755)
    os.chmod(tmp / CTR_DIR, 0o755)  # mounted at /.lxcri: the container's users read argv
    if shim is None:
        # a privileged container with CAP_SYS_ADMIN could remount a shared copy
        # writable and change what every other container runs: it gets its own
        shutil.copy2(libexec("lxcri-init"), tmp / CTR_DIR / "init")
    else:
        # the mount point of the shared shim, bind-mounted read-only over it
        (tmp / CTR_DIR / "init").write_bytes(b"")
        os.chmod(tmp / CTR_DIR / "init", 0o644)
    for rel, data in rendered.files.items():
        # the process's environment (secrets) is for root and the process's own user only
        mode = 0o600 if rel in (ARGV_FILE, f"{CTR_DIR}/env", SECCOMP_FILE) else 0o644
        atomic_write(tmp / rel, data, mode=mode)
    atomic_write(tmp / "config", rendered.text.encode(), mode=0o600)


# -- run ------------------------------------------------------------------------
def _upgrade_state(cfg: Config, rec: ContainerRecord) -> ContainerRecord:
    """Before a start: what an older lxcri made gets private modes (containers.private),
    and a dir or zfs rootfs LXC used in place is mounted in the state dir instead."""
    sdir = state_dir(cfg.root, rec.name)
    secure_root(cfg.root)
    shared_shim(cfg.root)  # an upgraded lxcri's shim, for every container started now
    mount_point = sdir / "rootfs"
    if rec.rootfs != str(mount_point) and not rec.mount:
        old = f"lxc.rootfs.path = dir:{rec.rootfs}\n"
        text = (sdir / "config").read_text()
        if old in text:
            mount_point.mkdir(exist_ok=True)
            atomic_write(
                sdir / "config",
                text.replace(old, f"lxc.rootfs.path = dir:{mount_point}\n").encode(),
                mode=0o600,
            )
            rec = dataclasses.replace(
                rec,
                rootfs=str(mount_point),
                mount=("mount", "--bind", rec.rootfs, str(mount_point), "/"),
            )
            save_record(cfg.root, rec)
    pass_old_volumes(cfg.root, sdir, rec.spec)
    secure_state_dir(sdir, rec.spec)
    return rec


def _clear_stop_request(sdir: Path) -> None:
    for marker in (STOP_REQUESTED, STOP_KILLED):
        with contextlib.suppress(FileNotFoundError):
            (sdir / marker).unlink()


class _Terminated(Exception):
    """SIGTERM arrived while a foreground container ran."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _log_offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def start_error(sdir: Path, lxc_log_offset: int) -> str | None:
    """The reason LXC gave for failing to start, from what it logged since the offset.

    A process that ran and exited non-zero logs nothing there; a start that
    failed (a hook, a mount, the config) logs ERROR lines, and the hooks log
    their own failures in hooks.log.
    """
    try:
        with open(sdir / "lxc.log", "rb") as f:
            f.seek(lxc_log_offset)
            new = f.read().decode(errors="replace")
    except OSError:
        return None
    # lxc.log is shared by every lxc-* tool: lxc-info (lxcri list/status) logs
    # errors of its own while a container stops. Only lxc-execute's count.
    errors = [ln for ln in new.splitlines() if ln.startswith("lxc-execute ") and " ERROR " in ln]
    if not errors:
        return None
    if any("hook" in ln for ln in errors):
        hooks = (sdir / "hooks.log").read_text() if (sdir / "hooks.log").exists() else ""
        failed = [line for line in hooks.splitlines() if "FAILED" in line]
        if failed:
            return failed[-1].split(" ", 1)[-1].strip()  # without the time stamp
    # "lxc-execute NAME TIME ERROR conf - ../src/lxc/conf.c:f:1 - Permission denied - what"
    parts = errors[0].split(" - ")[1:]
    why = " - ".join(p for p in parts if ".c:" not in p).strip() or errors[0]
    if "Failed to clone a new set of namespaces" in why:
        why += f"; {NO_NAMESPACES_HINT}"
    return why


#: What a failed clone of the namespaces means, for people (seen in a chroot).
NO_NAMESPACES_HINT = (
    "LXC cannot create the container's namespaces here: the kernel refuses user "
    "namespaces in a chroot (use pivot_root) and where they are restricted "
    "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)"
)


def run_foreground(cfg: Config, name: str, *, stdin: bool = False) -> int:
    """Run the container attached to this terminal; return the process's exit status.

    Ctrl-C and SIGTERM stop the container (its stop signal, then SIGKILL
    after its timeout) before returning, so ``--rm`` can clean up.
    """
    rec = _upgrade_state(cfg, load_record(cfg.root, name))
    sdir = state_dir(cfg.root, name)
    # the supervisor is alive from before the first start until after post-stop
    if supervisor_pid(sdir) or lxc.state(name, lxcpath(cfg)) != "STOPPED":
        raise BackendError(f"container {name} is already running")
    _clear_stop_request(sdir)
    ensure_bridge_for(cfg, rec)
    offset = _log_offset(sdir / "lxc.log")
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        record_started(sdir)
        proc = subprocess.Popen(
            lxc.execute_argv(name, lxcpath(cfg)),
            stdin=None if stdin else subprocess.DEVNULL,
        )
        try:
            raw = proc.wait()
        except (KeyboardInterrupt, _Terminated):
            lxc.stop(
                name,
                lxcpath(cfg),
                rec.spec.stop_timeout,
                stop_signal=rec.spec.stop_signal,
                before_kill=lambda: atomic_write(sdir / STOP_KILLED, b""),
            )
            raw = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old)
    rc = exit_status(raw, killed=(sdir / STOP_KILLED).exists())
    why = start_error(sdir, offset) if raw != 0 else None
    record_exit(sdir, rc, restarts=0, start_failed=why is not None, error=why or "")
    if why is not None:
        raise BackendError(f"container {name} failed to start: {why}")
    return rc


def supervisor_pid(sdir: Path) -> int | None:
    """The live supervisor's pid, or None."""
    try:
        pid = int((sdir / "supervisor.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    # a zombie or a recycled pid is not our supervisor
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"lxcri_core.containers.supervisor" in cmdline else None


def start(cfg: Config, name: str, wait: float = 20) -> None:
    """Start ``name`` detached, under its supervisor; return once it runs."""
    load_record(cfg.root, name)
    # concurrent starts: the second waits, then sees the supervisor and refuses
    with flocked(state_dir(cfg.root, name) / "start.lock"):
        _start_locked(cfg, name, wait)


def _start_locked(cfg: Config, name: str, wait: float) -> None:
    rec = _upgrade_state(cfg, load_record(cfg.root, name))
    sdir = state_dir(cfg.root, name)
    if supervisor_pid(sdir) or lxc.state(name, lxcpath(cfg)) != "STOPPED":
        raise BackendError(f"container {name} is already running")
    _clear_stop_request(sdir)
    with contextlib.suppress(FileNotFoundError):
        (sdir / "exit.json").unlink()
    ensure_bridge_for(cfg, rec)
    offset = _log_offset(sdir / "lxc.log")
    # the supervisor works with this very config (a --config file, flags), not
    # the default one: it releases the address on the container's bridge
    cfg_file = sdir / SUPERVISOR_CONFIG
    atomic_write(cfg_file, json.dumps(config_to_dict(cfg)).encode(), mode=0o600)
    with open(sdir / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lxcri_core.containers.supervisor",
                str(cfg.root),
                name,
                str(cfg_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if lxc.state(name, lxcpath(cfg)) == "RUNNING":
            log.info("container started", name=name, id=rec.id)
            return
        if (sdir / "exit.json").exists() or proc.poll() is not None:
            break
        time.sleep(0.01)
    else:
        raise BackendError(f"container {name} did not start within {wait:.0f} s")
    exit_doc = _read_json(sdir / "exit.json")
    if exit_doc.get("start_failed"):
        why = exit_doc.get("error") or "see its lxc.log"
        raise BackendError(f"container {name} failed to start: {why}")
    if exit_doc.get("exit_code") and (why := start_error(sdir, offset)):
        raise BackendError(f"container {name} failed to start: {why}")
    if not exit_doc:  # the supervisor died before the container ran
        try:
            tail = (sdir / "supervisor.log").read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            tail = f"exit status {proc.returncode}"
        raise BackendError(f"container {name} did not start: its supervisor ended: {tail}")
    # otherwise it ran and exited already (a short-lived process): a start, too


def stop(cfg: Config, name: str, timeout: int | None = None) -> None:
    """Stop ``name``: its stop signal, SIGKILL after the timeout; no restart follows.

    Returns within about the timeout also when the container is in a
    restart back-off (its supervisor is woken, not waited for) or is being
    restarted at this moment (it is stopped again until the supervisor ends).
    """
    rec = load_record(cfg.root, name)
    sdir = state_dir(cfg.root, name)
    atomic_write(sdir / STOP_REQUESTED, b"")
    t = rec.spec.stop_timeout if timeout is None else timeout
    pid = supervisor_pid(sdir)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # ends a back-off now; see supervisor.on_wake
    # no supervisor (it was killed) yet running: nobody else will record the exit
    orphan = pid is None and lxc.state(name, lxcpath(cfg)) != "STOPPED"
    deadline = time.monotonic() + t + 5
    while True:
        if lxc.state(name, lxcpath(cfg)) != "STOPPED":
            lxc.stop(
                name,
                lxcpath(cfg),
                t,
                stop_signal=rec.spec.stop_signal,
                before_kill=lambda: atomic_write(sdir / STOP_KILLED, b""),
            )
        if not (pid and supervisor_pid(sdir)):
            break
        if time.monotonic() > deadline:  # a supervisor that does not end: end it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            break
        time.sleep(0.05)
    if orphan:  # its own status is lost with the supervisor; a SIGKILL's is not
        restarts = ExitDoc.from_json(_read_json(sdir / "exit.json"))
        record_exit(
            sdir,
            137 if (sdir / STOP_KILLED).exists() else None,
            restarts.restarts if restarts else 0,
        )
    log.info("container stopped", name=name)


def restart(cfg: Config, name: str, timeout: int | None = None) -> None:
    stop(cfg, name, timeout)
    start(cfg, name)


def remove(cfg: Config, name: str, *, force: bool = False) -> None:
    """Remove ``name``: rootfs, address, anonymous volumes, state. Named volumes stay."""
    sdir = state_dir(cfg.root, name)
    with _name_lock(cfg, name), flocked(sdir / "start.lock") if sdir.is_dir() else _nothing():
        try:
            rec = load_record(cfg.root, name)
        except BackendError:
            if not sdir.is_dir():
                raise
            _remove_half_created(cfg, sdir)
            return
        _remove_locked(cfg, rec, sdir, force)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _remove_half_created(cfg: Config, sdir: Path) -> None:
    """What a crash between create's steps left: no record, maybe an id."""
    try:
        cid = (sdir / "id").read_text().strip()
    except OSError:
        cid = ""
    if cid:
        from lxcri_core.storage import BACKENDS, open_backend

        with contextlib.suppress(Exception):
            _release_address(cfg, cid)
        for name in BACKENDS:
            with contextlib.suppress(Exception):
                backend = open_backend(cfg, name)
                if cid in backend.containers():
                    backend.remove_rootfs(cid)
        remove_anonymous(cfg.root, cid)
    _rmtree_unmounted(sdir)
    log.info("half-created container removed", dir=str(sdir), id=cid)


def _rmtree_unmounted(sdir: Path) -> None:
    """Delete a state dir, never through a rootfs or volume still mounted in it."""
    unmount_volumes(sdir)
    rootfs = sdir / "rootfs"
    if is_mountpoint(rootfs):  # a bind mount of the same filesystem, too
        proc = subprocess.run(["umount", str(rootfs)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BackendError(
                f"cannot unmount {rootfs}: {proc.stderr.strip()}; the container's state is kept"
            )
    shutil.rmtree(sdir)


def _remove_locked(cfg: Config, rec: ContainerRecord, sdir: Path, force: bool) -> None:
    from lxcri_core.network import ports
    from lxcri_core.storage import open_backend

    name = rec.name
    running = lxc.state(name, lxcpath(cfg)) != "STOPPED" or supervisor_pid(sdir)
    if running and not force:
        raise BackendError(f"container {name} is running; stop it first or use --force")
    if running:
        stop(cfg, name, timeout=0)
    with contextlib.suppress(Exception):
        ports.unpublish(rec.id)
    if rec.spec.network.mode != "none" and rec.bridge == cfg.bridge:
        _release_address(cfg, rec.id)
    # the marker goes first: from here on hooks ignore the container
    (sdir / "lxcri.json").unlink(missing_ok=True)
    if is_mountpoint(rec.rootfs):
        subprocess.run(["umount", rec.rootfs], check=False, capture_output=True)
    try:
        open_backend(cfg, rec.storage).remove_rootfs(rec.id)
    except Exception as e:
        log.warning("rootfs removal failed", name=name, error=str(e))
    remove_anonymous(cfg.root, rec.id)
    _rmtree_unmounted(sdir)
    log.info("container removed", name=name, id=rec.id)


# -- inspect --------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerStatus:
    name: str
    id: str
    image: str
    status: str  # created, running, paused, restarting, exited (see status.py)
    health: str  # "", starting, healthy, unhealthy
    exit_code: int | None
    restarts: int
    ipv4: str
    ipv6: str
    ports: tuple[PortMapping, ...]
    created: str
    pid: int | None
    storage: str
    image_digest: str = ""
    started_at: str = ""
    finished_at: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    #: docker's STATUS column: "Up 3 minutes (healthy)", "Exited (137) 5 minutes ago"
    status_text: str = ""
    #: why LXC could not start it (a failed start), else ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def port_text(p: PortMapping) -> str:
    """``127.0.0.1:8080->80/tcp``, as docker ps shows a published port."""
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}->{p.container_port}/{p.protocol}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _status(cfg: Config, rec: ContainerRecord) -> ContainerStatus:
    sdir = state_dir(cfg.root, rec.name)
    st = lxc.state(rec.name, lxcpath(cfg))
    exit_doc = ExitDoc.from_json(_read_json(sdir / "exit.json"))
    started = _read_json(sdir / STARTED)
    health = str(_read_json(sdir / "health.json").get("status", ""))
    sup = supervisor_pid(sdir) is not None
    derived = derive_status(st, exit_doc, health, sup, has_run=bool(started))
    started_at = str(started.get("started", ""))
    finished_at = exit_doc.finished if exit_doc else ""
    return ContainerStatus(
        name=rec.name,
        id=rec.id,
        image=rec.image,
        status=derived.state,
        health=derived.health,
        exit_code=derived.exit_code,
        restarts=exit_doc.restarts if exit_doc else 0,
        ipv4=rec.ipv4,
        ipv6=rec.ipv6,
        ports=rec.spec.ports,
        created=rec.created,
        pid=lxc.init_pid(rec.name, lxcpath(cfg)) if derived.state == "running" else None,
        storage=rec.storage,
        image_digest=rec.image_digest,
        started_at=started_at,
        finished_at=finished_at,
        labels=dict(rec.spec.labels),
        status_text=describe(derived, started_at, finished_at, datetime.now(UTC)),
        error=exit_doc.error if exit_doc else "",
    )


def status(cfg: Config, name: str) -> ContainerStatus:
    return _status(cfg, load_record(cfg.root, name))


def list_containers(cfg: Config) -> list[ContainerStatus]:
    return [_status(cfg, rec) for rec in list_records(cfg.root)]


def find(cfg: Config, name_or_id: str) -> str:
    """A container's name from its name or a unique id prefix (as docker accepts)."""
    recs = list_records(cfg.root)
    for rec in recs:
        if rec.name == name_or_id:
            return rec.name
    hits = [r.name for r in recs if len(name_or_id) >= 4 and r.id.startswith(name_or_id)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise BackendError(f"container id prefix {name_or_id} is ambiguous")
    with contextlib.suppress(BackendError):
        if state_dir(cfg.root, name_or_id).is_dir():  # half-created: `rm` cleans it up
            return name_or_id
    # the hint only for what could be an id: "ga" is a name, "ab" may be an id's start
    hexish = all(c in "0123456789abcdef" for c in name_or_id)
    hint = " (an id prefix needs at least 4 characters)" if hexish and len(name_or_id) < 4 else ""
    raise BackendError(f"no such container: {name_or_id}{hint} (see `lxcri ps -a`)")


@dataclass(frozen=True)
class ExecCommand:
    """What runs ``lxcri exec``: ``argv`` (``lxc-attach``) with the host environment ``env``."""

    argv: list[str]
    env: dict[str, str]


#: lxc-attach passes these through to the shim, which builds the environment from them alone:
#: values never appear on a command line, and a variable such as LD_PRELOAD from an image
#: means nothing to the host's lxc-attach under this name.
EXEC_ENV_PREFIX = "LXCRI_ENV_"


def exec_argv(
    cfg: Config,
    name: str,
    argv: list[str],
    *,
    env: tuple[str, ...] = (),
    user: str = "",
    workdir: str | None = None,
    tty: bool = False,
    host_env: dict[str, str] | None = None,
) -> ExecCommand:
    """The command running ``argv`` in ``name`` as docker exec does.

    It runs as the container's user unless ``user`` (``NAME|UID[:GROUP|GID]``,
    names from the container's /etc/passwd and /etc/group) says otherwise,
    with the user's supplementary groups, in the container's working
    directory unless ``workdir``, with the container's environment plus
    ``TERM=xterm`` for a tty plus ``env`` (``-e NAME=VALUE`` or ``-e NAME``).
    The init shim (``/.lxcri/init --exec``) sets all of that inside the
    container and exits 126/127 as docker does when it cannot.
    """
    from lxcri_core.errors import SpecError
    from lxcri_core.spec.build import merge_env
    from lxcri_core.spec.lxc_config import CTR_DIR, DEFAULT_INIT_SHIM
    from lxcri_core.spec.options import parse_env, parse_user
    from lxcri_core.spec.users import read_rootfs_file, resolve_user

    rec = load_record(cfg.root, name)
    if lxc.state(name, lxcpath(cfg)) != "RUNNING":
        raise BackendError(f"container {name} is not running")
    host = dict(os.environ if host_env is None else host_env)
    spec = rec.spec
    u = spec.user
    if user:
        uname, group = parse_user(user)
        # the running container's files: read without following its links out of the rootfs
        root = Path(rec.rootfs)
        u = resolve_user(
            uname,
            group,
            read_rootfs_file(root, "etc/passwd"),
            read_rootfs_file(root, "etc/group"),
            tuple(str(g) for g in spec.user.group_add_gids),  # the container's --group-add
        )
    cwd = spec.working_dir if workdir is None else workdir
    if not cwd.startswith("/"):
        raise SpecError(f"invalid -w value {cwd!r}: the working directory must be absolute")
    extra = [e for e in (parse_env(v, host) for v in env) if e is not None]
    full_env = merge_env(spec.env, ["TERM=xterm"] if tty else [], extra)
    shim = state_dir(cfg.root, name) / CTR_DIR / "init"
    if shim.is_file() and EXEC_ENV_PREFIX.encode() not in shim.read_bytes():
        # a container created before the shim had --exec: lxc-attach alone, as then
        cmd = lxc.attach_argv(name, lxcpath(cfg), argv, full_env, u.uid, u.gid)
        return ExecCommand(cmd, host)
    out_env = {k: v for k, v in host.items() if not k.startswith(EXEC_ENV_PREFIX)}
    cmd = ["lxc-attach", "-n", name, "-P", str(lxcpath(cfg)), "--clear-env"]
    for i, item in enumerate(full_env):
        out_env[f"{EXEC_ENV_PREFIX}{i}"] = item
        cmd += ["--keep-var", f"{EXEC_ENV_PREFIX}{i}"]
    if spec.security.shim_sets_ids:  # attach as root; the shim sets groups, gid, uid
        cmd += ["-u", "0", "-g", "0"]
        groups = ",".join(str(g) for g in u.additional_gids)
    else:  # without CAP_SETUID the shim cannot switch: lxc-attach does, without groups
        cmd += ["-u", str(u.uid), "-g", str(u.gid)]
        groups = ""
    cmd += ["--", DEFAULT_INIT_SHIM, "--exec", str(u.uid), str(u.gid), groups, cwd, "--", *argv]
    return ExecCommand(cmd, out_env)


def logs_path(cfg: Config, name: str) -> Path:
    load_record(cfg.root, name)
    return state_dir(cfg.root, name) / "console.log"
