"""``upgrade``, ``rollback`` and ``history`` of a plain-LXC container.

An upgrade rebuilds the container's spec from the new image's config and the
options the container was created with (``ContainerRecord.options``): what the
user set (``-e``, ``--entrypoint``, ``-w``, ``-u``, ``-v``...) wins, what came
from the old image (ENTRYPOINT, CMD, ENV, WORKDIR, USER, VOLUME, EXPOSE) follows
the new one. Kept as they are: the id (so its address lease, published ports
and anonymous volumes), VMID, name, network, ports, limits changed by ``set``,
tags, named and anonymous volumes. The new rootfs is made from the store's
shared layers like a create's (zfs: a clone of the new chain; overlay: a new
upper dir over the new lowers; dir: a copy); the old one stays with its
generation (``generations``) for ``rollback``.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_core import faults
from lxcri_core.backend import Generation, UpgradeRequest, UpgradeResult
from lxcri_core.config import Config
from lxcri_core.containers import generations as gen
from lxcri_core.containers import lxc
from lxcri_core.containers.create import _mount_command, populate
from lxcri_core.containers.create_checks import _checked
from lxcri_core.containers.listing import with_vmid
from lxcri_core.containers.locks import _name_lock, _term_raises
from lxcri_core.containers.record import ContainerRecord, load_record, lxcpath, state_dir
from lxcri_core.containers.runstate import supervisor_pid
from lxcri_core.containers.serial import from_dict
from lxcri_core.errors import BackendError, LxcriError
from lxcri_core.fsutil import atomic_write
from lxcri_core.log import get_logger
from lxcri_core.spec.model import ContainerSpec

log = get_logger(__name__)


def _running(cfg: Config, rec: ContainerRecord) -> bool:
    sdir = state_dir(cfg.root, rec.name)
    return bool(supervisor_pid(sdir)) or lxc.active(rec.name, lxcpath(cfg))


def _forget_neighbour(rec: ContainerRecord) -> None:
    """The container comes back with a new MAC address (LXC makes one at each start):
    the host's neighbour entry for its address would send the published ports' traffic
    to the old one until it goes stale; best effort."""
    import subprocess

    if rec.ipv4 and rec.bridge:
        subprocess.run(
            ["ip", "neigh", "flush", "to", rec.ipv4, "dev", rec.bridge],
            capture_output=True,
            check=False,
        )


def _result(rec: ContainerRecord, old: str, new: str, outcome: Any, **kw: Any) -> UpgradeResult:
    return UpgradeResult(
        vmid=rec.vmid, name=rec.name, image=rec.image, old_digest=old, new_digest=new,
        outcome=outcome, **kw,
    )  # fmt: skip


def upgrade(cfg: Config, name: str, req: UpgradeRequest) -> UpgradeResult:
    """Move ``name`` to ``req.image`` (default: its own reference) as it is now; see the module."""
    from lxcri_core.containers import lifecycle

    with _name_lock(cfg, name), _term_raises():
        gen.recover(cfg, name)
        rec = with_vmid(cfg, load_record(cfg.root, name))
        if not rec.options:
            raise BackendError(
                f"container {name} was created by an lxcri before 0.3, which did not keep its "
                "options: it cannot be upgraded; create it anew from the new image"
            )
        from lxcri_core.images import resolve_or_pull

        ref = req.image or rec.image
        store, image = resolve_or_pull(cfg, ref, pull=req.pull, insecure=req.insecure)
        digest = image.descriptor.digest
        if digest == rec.image_digest:
            return _result(rec, digest, digest, "unchanged", message=f"already at {digest}")
        was_running = _running(cfg, rec)
        new = _build(cfg, rec, store, image)
        faults.point("upgrade-built")
        try:
            if was_running:
                lifecycle.stop(cfg, name)
        except BaseException:
            gen.recover(cfg, name)  # nothing swapped yet: the new generation goes
            raise
        faults.point("upgrade-stopped")
        gen.write_journal(cfg.root, name, {"op": "upgrade", "phase": "swapping",
                                           "old_generation": rec.generation})  # fmt: skip
        gen.swap_in(cfg, name, rec.generation)
        removed = gen.prune(cfg, name)
    log.info("container upgraded", name=name, image=new.image, digest=digest, pruned=removed)
    started = False
    if was_running:
        started = True
        _forget_neighbour(new)
        try:
            lifecycle.start(cfg, name)
        except BackendError as e:  # the caller's health wait sees it exited, and rolls back
            log.warning("the upgraded container did not start", name=name, error=str(e))
    return _result(new, rec.image_digest, digest, "upgraded", started=started)


def _build(cfg: Config, rec: ContainerRecord, store: Any, image: Any) -> ContainerRecord:
    """The new generation's state dir at ``.NAME.upgrading``, on a new rootfs."""
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.spec.build import build_spec
    from lxcri_core.spec.model import IdMap
    from lxcri_core.spec.options import RunOptions
    from lxcri_core.storage import open_backend

    manifest = Manifest.parse(store.read_blob(image.descriptor.digest))
    image_config = load_json(store.read_blob(manifest.config.digest), "image config")
    opts = from_dict(RunOptions, rec.options)
    old = rec.spec
    umap = old.security.idmaps[0] if old.security.unprivileged else None
    idmap = IdMap(umap.host, umap.count) if umap else None
    backend = open_backend(cfg, rec.storage)
    rootfs_id = secrets.token_hex(32)
    sdir, work = state_dir(cfg.root, rec.name), gen.work_dir(cfg.root, rec.name)
    # first the journal: a crash from here on is undone by the next recover
    journal = {"op": "upgrade", "phase": "building", "rootfs_id": rootfs_id,
               "storage": backend.name}  # fmt: skip
    gen.write_journal(cfg.root, rec.name, journal)
    try:
        with store.in_use():  # image prune waits until the rootfs holds the chain
            chain = backend.prepare_image(store, image.descriptor.digest, idmap)
            rootfs = backend.create_rootfs(chain, rootfs_id)
        faults.point("upgrade-rootfs")
        work.mkdir(mode=0o700)
        atomic_write(work / "id", rec.id.encode())

        def spec_for(seen: Path) -> tuple[ContainerSpec, dict[str, str]]:
            spec = build_spec(image_config, opts, seen, image=image.name)
            # ports are kept as they are published now (a -p 80's host port too)
            spec = _checked(dataclasses.replace(spec, ports=()))
            spec = dataclasses.replace(
                spec, ports=old.ports, network=old.network, resources=old.resources
            )
            return spec, {"bridge": rec.bridge, "ipv4": rec.ipv4, "ipv6": rec.ipv6}

        def record_for(
            spec: ContainerSpec, net: dict[str, str], anon: dict[str, str]
        ) -> ContainerRecord:
            return dataclasses.replace(
                rec,
                image=image.name,
                image_digest=image.descriptor.digest,
                spec=spec,
                mount=_mount_command(rootfs, sdir / "rootfs"),
                rootfs_id=rootfs_id,
                generation=rec.generation + 1,
                generation_created=datetime.now(UTC).isoformat(timespec="seconds"),
                anon_volumes=anon,
            )

        owner = idmap.host if idmap else 0
        anon = rec.anon_volumes or _created_anon(cfg.root, rec)
        new = populate(cfg, work, sdir, rootfs, rec.id, owner, spec_for, record_for, anon)
        from lxcri_core.containers.record import RECORD

        atomic_write(work / RECORD, _record_bytes(new))
    except BaseException:
        gen.undo_build(cfg, rec.name, journal)
        raise
    return new


def _record_bytes(rec: ContainerRecord) -> bytes:
    import json

    return json.dumps(rec.to_json(), indent=2, sort_keys=True).encode()


def _created_anon(root: Path, rec: ContainerRecord) -> dict[str, str]:
    """The anonymous volumes of a container never upgraded: numbered in mount order."""
    from lxcri_core.containers.volumes import volumes_dir

    targets = [m.target for m in rec.spec.mounts if m.kind == "anonymous"]
    return {t: str(volumes_dir(root) / f"anon-{rec.id}-{n}") for n, t in enumerate(targets)}


def rollback(cfg: Config, name: str) -> UpgradeResult:
    """Back to the newest kept generation; the current one is deleted with its rootfs."""
    from lxcri_core.containers import lifecycle

    with _name_lock(cfg, name), _term_raises():
        gen.recover(cfg, name)
        rec = with_vmid(cfg, load_record(cfg.root, name))
        previous = next(gen.kept(cfg.root, name), None)
        if previous is None:
            raise BackendError(
                f"container {name} has no earlier generation to roll back to (see `lxcri history`)"
            )
        number, path = previous
        target = gen.kept_record(path)
        was_running = _running(cfg, rec)
        if was_running:
            lifecycle.stop(cfg, name)
        faults.point("rollback-stopped")
        gen.write_journal(cfg.root, name, {"op": "rollback", "phase": "swapping",
                                           "generation": number})  # fmt: skip
        gen.swap_back(cfg, name, number)
    log.info("container rolled back", name=name, digest=target.image_digest, generation=number)
    if was_running:
        _forget_neighbour(target)
        lifecycle.start(cfg, name)
    return _result(
        dataclasses.replace(target, vmid=rec.vmid),
        rec.image_digest,
        target.image_digest,
        "rolled-back",
        message=f"generation {number}",
        started=was_running,
    )


def history(cfg: Config, name: str) -> list[Generation]:
    """The current generation, then the kept ones, newest first."""
    from lxcri_core.storage import open_backend

    with _name_lock(cfg, name):
        gen.recover(cfg, name)
    rec = load_record(cfg.root, name)
    rows = [(rec, True)] + [(gen.kept_record(p), False) for _n, p in gen.kept(cfg.root, name)]
    out = []
    for r, current in rows:
        try:
            fs = open_backend(cfg, r.storage).rootfs(r.rootfs_key)
            where = fs.dataset or str(fs.upperdir or fs.path)
        except LxcriError:
            where = ""
        created = r.generation_created or r.created
        out.append(Generation(r.generation, r.image, r.image_digest, created, current, where))
    return out
