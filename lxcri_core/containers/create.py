"""The create transaction: image, rootfs, network, volumes, LXC config, then the record (last)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers import vmids
from lxcri_core.containers.create_checks import _checked
from lxcri_core.containers.locks import _name_lock, _term_raises
from lxcri_core.containers.netplan import _plain_lxc_network, _release_address
from lxcri_core.containers.paths import hook_command, libexec
from lxcri_core.containers.private import (
    passed_volumes,
    secure_root,
    secure_state_dir,
    shared_shim,
)
from lxcri_core.containers.record import (
    ContainerRecord,
    check_name,
    containers_dir,
    save_record,
    state_dir,
)
from lxcri_core.containers.serial import to_dict
from lxcri_core.containers.subids import check_root_subids, ensure_root_subids
from lxcri_core.containers.volume_ops import volumes_locked
from lxcri_core.containers.volumes import prepare_volumes, remove_anonymous
from lxcri_core.errors import BackendError
from lxcri_core.fsutil import atomic_write, syncfs
from lxcri_core.log import get_logger
from lxcri_core.spec.model import ContainerSpec

log = get_logger(__name__)


def _resolve_image(cfg: Config, image: str, pull_missing: bool, insecure: bool) -> Any:
    from lxcri_core.images import resolve_or_pull

    return resolve_or_pull(
        cfg, image, pull="missing" if pull_missing else "never", insecure=insecure
    )


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
    vmid: int | None = None,
    tags: tuple[str, ...] = (),
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
            cfg, cid, name, image, opts, storage, pull_missing, insecure, auto_remove, vmid, tags
        )


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
    wanted_vmid: int | None,
    tags: tuple[str, ...],
) -> ContainerRecord:
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.spec.build import build_spec, frozen_options
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
        if opts.idmap:  # the user's range: it must be root's already (subids.check_root_subids)
            from lxcri_core.containers.private import PASSAGE_GID

            if umap.host != PASSAGE_GID:
                raise BackendError(
                    f"--idmap {opts.idmap}: on the lxc backend a container's root passes "
                    f"through lxcri's private root as host gid {PASSAGE_GID} only; use a map "
                    f"from {PASSAGE_GID} or a Proxmox backend (lxc.idmap in pct.conf)"
                )
            check_root_subids(umap.host, umap.count)
        else:
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
        # after the work dir exists: the index keeps the VMID of a create in progress
        vmid = vmids.allocate(cfg.root, name, wanted_vmid)
        undo.append(lambda: vmids.release(cfg.root, name))
        # the id, first: what a crash leaves behind can then be cleaned up by `rm`
        atomic_write(tmp / "id", cid.encode())
        frozen = frozen_options(opts)

        def spec_for(seen: Path) -> tuple[ContainerSpec, dict[str, str]]:
            spec = _checked(build_spec(image_config, opts, seen, image=rec.name))
            return _plain_lxc_network(cfg, spec, cid, opts, vmid)

        def record_for(
            spec: ContainerSpec, net: dict[str, str], anon: dict[str, str]
        ) -> ContainerRecord:
            now = datetime.now(UTC).isoformat(timespec="seconds")
            return ContainerRecord(
                id=cid,
                name=name,
                image=rec.name,
                image_digest=rec.descriptor.digest,
                storage=backend.name,
                rootfs=str(sdir / "rootfs"),
                created=now,
                spec=spec,
                bridge=net.get("bridge", ""),
                ipv4=net.get("ipv4", ""),
                ipv6=net.get("ipv6", ""),
                auto_remove=auto_remove,
                mount=_mount_command(rootfs, sdir / "rootfs"),
                vmid=vmid,
                tags=tags,
                options=to_dict(frozen),
                generation_created=now,
                anon_volumes=anon,
            )

        undo.append(lambda: remove_anonymous(cfg.root, cid))
        record = populate(
            cfg, tmp, sdir, rootfs, cid, idmap.host if idmap else 0, spec_for, record_for
        )
        os.rename(tmp, sdir)
        save_record(cfg.root, record)  # the marker: written last
    except BaseException:
        for fn in reversed(undo):
            with contextlib.suppress(Exception):
                fn()
        with contextlib.suppress(Exception):
            _release_address(cfg, cid)
        raise
    log.info(
        "container created",
        name=name,
        id=cid,
        vmid=record.vmid,
        image=rec.name,
        storage=backend.name,
    )
    return record


def populate(
    cfg: Config,
    tmp: Path,
    sdir: Path,
    rootfs: Any,
    cid: str,
    owner: int,
    spec_for: Callable[[Path], tuple[ContainerSpec, dict[str, str]]],
    record_for: Callable[[ContainerSpec, dict[str, str], dict[str, str]], ContainerRecord],
    anon: Mapping[str, str] | None = None,
) -> ContainerRecord:
    """Fill ``tmp``, the work dir of the state dir ``sdir``, for a container on ``rootfs``:
    the spec (``spec_for`` reads the mounted image), its volumes (``anon``: anonymous ones
    to reuse, by container path), mount targets, the LXC config and the record
    (``record_for``), synced. Used by create and by upgrade (a new generation)."""
    # mount once now: /etc/passwd for --user, image content to seed volumes
    (tmp / "rootfs").mkdir()
    seen = rootfs.mount(tmp / "rootfs") if rootfs.backend == "overlay" else rootfs.path
    try:
        _mount_points(seen, owner)
        spec, net = spec_for(seen)
        reuse = {k: Path(v) for k, v in anon.items()} if anon is not None else None
        volumes = prepare_volumes(cfg.root, cid, spec, seen, owner, reuse)
        targets = _mount_targets(seen, spec, volumes, owner)
    finally:
        if rootfs.backend == "overlay":
            rootfs.umount(tmp / "rootfs")
    anon_paths = {m.target: str(volumes[m.target]) for m in spec.mounts if m.kind == "anonymous"}
    record = record_for(spec, net, anon_paths)
    _write_lxc_files(cfg, tmp, sdir, record, passed_volumes(tmp, sdir, spec, volumes), targets)
    secure_state_dir(tmp, spec)
    # the files above are written without an fsync each (~5 ms apiece while the
    # disk is busy): one syncfs makes them durable before the dir gets its name
    syncfs(tmp)
    return record


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


def _net_up_hook(spec: ContainerSpec) -> dict[str, str]:
    """``net-up`` (lxc.net.0.script.up) when the interface has a VLAN, trunks or a rate,
    or is on an OVS bridge, and a ``start-host`` hook taking a DHCP lease when it has no
    address (network.netup)."""
    import shlex
    import sys

    from lxcri_core.network import netup

    net = spec.network
    if net.mode != "bridge":
        return {}
    hook = [sys.executable, str(netup.hook_path())]
    out = {}
    args = netup.up_args(net, ovs=netup.on_ovs(net.bridge))
    if args:
        out["net-up"] = shlex.join([*hook, *args])  # LXC runs it through sh -c
    dhcp = netup.dhcp_args(net)  # an admin's bridge without --ip: a lease from its server
    if dhcp:
        out["start-host"] = shlex.join([*hook, *dhcp])
    return out


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
        hooks={"pre-start": hook, "post-stop": hook, **_net_up_hook(record.spec)},
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
        _write_new(tmp / rel, data, mode)
    _write_new(tmp / "config", rendered.text.encode(), 0o600)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """A new file in the create's own work dir (no other writer, synced by the caller):
    never through a link, never over an existing file, ``mode`` whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
