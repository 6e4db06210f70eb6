"""``upgrade``, ``rollback`` and ``history`` of the pve-local backend.

An upgrade builds the new image's rootfs as the CT's next volume
(``subvol-VMID-disk-N``: a zfs clone of the new chain, or a copy of its
template on a dir storage, as ``create`` builds one), stops the CT (its stop
timeout), and in one pct.conf write points ``rootfs`` at it, keeps the old
volume as ``unusedN`` and moves what the old image gave to what the new one
gives (``pve_generations.apply_derived``); every other key (``mpN``, ``netN``,
memory, cores, tags, the hookscript) is left as it is, and so is lxcri's
record but for the image, digest, rootfs and healthcheck. Generations beyond
``keep_generations`` are removed in the same step. A rollback swaps back to
the newest kept generation and discards the current one. Both write their
journal before each step that changes anything (``pve_generations``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lxcri_pve.backends import pve_storage
from lxcri_pve.backends.pve_generations import (
    Derived,
    GenRecord,
    Journal,
    apply_derived,
    check_storable,
    clear_journal,
    derived_healthcheck,
    load_generations,
    load_journal,
    save_generations,
    save_journal,
)
from lxcri_pve.backends.pve_hookstate import STOP_REQUESTED
from lxcri_pve.backends.pve_state import CtState, load_state, save_state, state_dir

from lxcri_core import faults
from lxcri_core.backend import CtRef, Generation, UpgradeRequest, UpgradeResult
from lxcri_core.errors import BackendError, LockTimeout, SpecError
from lxcri_core.log import get_logger

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.spec.pve_config import PveConfig

log = get_logger(__name__)


class PveLocalBackend(Protocol):
    """What of ``pve_local.PveLocalBackend`` this uses."""

    cfg: Config

    def _resolve(self, ref: CtRef) -> int: ...
    def _read_conf(self, vmid: int) -> PveConfig | None: ...
    def _write_conf(self, vmid: int, text: str) -> None: ...
    def _lock(self, vmid: int) -> contextlib.AbstractContextManager[None]: ...
    def _state(self, vmid: int) -> tuple[str, int | None, str]: ...
    def start(self, ref: CtRef) -> None: ...
    def stop(self, ref: CtRef, timeout: float | None = None) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def image_derived(image_config: Mapping[str, Any], name: str, rootfs: Path, image: str) -> Derived:
    """What the image alone makes of a CT's settings (``Derived``)."""
    from lxcri_core.spec.build import build_spec
    from lxcri_core.spec.options import RunOptions

    opts = RunOptions(name=name, hostname=name)
    try:
        derived = Derived.of(build_spec(image_config, opts, rootfs, image=image))
    except SpecError as e:
        raise BackendError(f"image {image}: {e}") from None
    check_storable(derived, image)
    return derived


def stored_image_config(cfg: Config, digest: str) -> Mapping[str, Any] | None:
    """The config of the image with manifest ``digest`` while its blobs are in the store
    (its tag may have moved on to a newer one), else None."""
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.store.layout import Store

    try:
        store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout)
        manifest = Manifest.parse(store.read_blob(digest))
        config: Mapping[str, Any] = load_json(store.read_blob(manifest.config.digest), "config")
    except Exception:
        return None
    return config


def first_generation(
    image_config: Mapping[str, Any], name: str, rootfs: Path, st: CtState
) -> GenRecord:
    """The generation ``create`` makes."""
    derived = image_derived(image_config, name, rootfs, st.image)
    return GenRecord(1, st.image, st.image_digest, st.created, st.rootfs_volume, derived)


def _lock_path(be: PveLocalBackend, vmid: int) -> Path:
    return state_dir(be.cfg.root, vmid) / "upgrade.lock"


@contextlib.contextmanager
def _exclusive(be: PveLocalBackend, vmid: int) -> Iterator[None]:
    """One upgrade or rollback of a CT at a time."""
    from lxcri_core.fsutil import flocked

    held = contextlib.ExitStack()
    try:
        held.enter_context(flocked(_lock_path(be, vmid), timeout=be.cfg.lock_timeout))
    except LockTimeout:
        raise BackendError(f"CT {vmid}: another upgrade or rollback of it runs") from None
    with held:
        yield


def _record(be: PveLocalBackend, vmid: int) -> CtState:
    st = load_state(be.cfg.root, vmid)
    if st is None:
        raise BackendError(f"CT {vmid} has no lxcri record ({state_dir(be.cfg.root, vmid)})")
    return st


def _conf(be: PveLocalBackend, vmid: int) -> PveConfig:
    conf = be._read_conf(vmid)
    if conf is None:
        raise BackendError(f"CT {vmid}: its config is gone")
    return conf


def _rootfs(conf: PveConfig) -> dict[str, str]:
    from lxcri_core.spec.pve_config import parse_property_string

    return parse_property_string(conf.main.get("rootfs") or "", "volume")


def _storage(be: PveLocalBackend, volid: str) -> pve_storage.PveStorage:
    sid = volid.partition(":")[0]
    st = pve_storage.read_storages(be.cfg.pve_root).get(sid)
    if st is None or st.type not in ("dir", "zfspool"):
        raise BackendError(
            f"the rootfs {volid} is not on a dir or zfspool storage; lxcri upgrades only those"
        )
    return st


def _referenced(conf: PveConfig, volid: str) -> bool:
    """Whether a key of pct.conf (any section) names volume ``volid``."""
    pattern = re.compile(rf"(?:^|[\s,=]){re.escape(volid)}(?:$|[\s,])")
    return any(pattern.search(line) for line in conf.render().splitlines())


def _discard(be: PveLocalBackend, vmid: int, volid: str) -> None:
    disk = pve_storage.volume_disk(volid, vmid)
    if disk is None:
        return  # not a volume lxcri made: never delete it
    pve_storage.remove_volume(be.cfg, _storage(be, volid), vmid, disk)


def recover(be: PveLocalBackend, vmid: int) -> None:
    """Finish the swap of an interrupted upgrade or rollback that pct.conf already shows,
    else undo it (remove the volume it built)."""
    root = be.cfg.root
    j = load_journal(root, vmid)
    if j is None:
        return
    conf = _conf(be, vmid)
    current = _rootfs(conf).get("volume", "")
    if j.phase == "swap" and current == j.new_volume:
        log.warning("finishing an interrupted " + j.op, vmid=vmid, rootfs=current)
        save_state(root, CtState.from_json(j.state))
        save_generations(root, vmid, [GenRecord.from_json(g) for g in j.generations])
        for volid in j.discard:
            if not _referenced(conf, volid):
                _discard(be, vmid, volid)
    else:
        log.warning("undoing an interrupted " + j.op, vmid=vmid, rootfs=current)
        if j.built and j.built != current and not _referenced(conf, j.built):
            _discard(be, vmid, j.built)
    clear_journal(root, vmid)


def _generations(be: PveLocalBackend, vmid: int, st: CtState, conf: PveConfig) -> list[GenRecord]:
    """The recorded generations; for a CT created before they were, its current one."""
    gens = load_generations(be.cfg.root, vmid)
    if gens:
        return gens
    derived = None
    disk = pve_storage.volume_disk(st.rootfs_volume, vmid)
    image_config = stored_image_config(be.cfg, st.image_digest)
    if image_config is not None and disk is not None:
        with contextlib.suppress(Exception):  # an image create took would not fail now
            rootpath = pve_storage.volume_path(_storage(be, st.rootfs_volume), vmid, disk)
            derived = image_derived(image_config, st.name, rootpath, st.image)
    return [GenRecord(1, st.image, st.image_digest, st.created, st.rootfs_volume, derived)]


def _free_disk(be: PveLocalBackend, vmid: int, sto: pve_storage.PveStorage, conf: PveConfig) -> int:
    text = conf.render()
    n = 1
    while f"subvol-{vmid}-disk-{n}" in text or pve_storage.volume_exists(be.cfg, sto, vmid, n):
        n += 1
    return n


def _set_rootfs(conf: PveConfig, volid: str) -> None:
    from lxcri_core.spec.pve_config import render_property_string

    prop = _rootfs(conf)
    prop["volume"] = volid
    conf.main.set("rootfs", render_property_string(prop, "volume"))


def _keep_unused(conf: PveConfig, volid: str) -> None:
    n = 0
    while conf.main.get(f"unused{n}") is not None:
        n += 1
    conf.main.set(f"unused{n}", volid)


def _drop_unused(conf: PveConfig, volids: Sequence[str]) -> None:
    for key, value in conf.main.options().items():
        if re.fullmatch(r"unused\d+", key) and value in volids:
            conf.main.delete(key)


def _description(conf: PveConfig, old: GenRecord, new: GenRecord) -> None:
    """create's ``lxcri image NAME\\nDIGEST`` description follows the image; another stays."""
    if conf.main.description == f"lxcri image {old.image}\n{old.image_digest}":
        conf.main.description = f"lxcri image {new.image}\n{new.image_digest}"


def _swap(
    be: PveLocalBackend,
    vmid: int,
    j: Journal,
    current: GenRecord,
    target: GenRecord,
    gens: list[GenRecord],
    keep: Sequence[str],
) -> None:
    """Point the stopped CT at ``target``'s volume: journal, pct.conf, record, generations,
    then the volumes of ``discard`` go."""
    root = be.cfg.root
    with be._lock(vmid):
        conf = _conf(be, vmid)
        if _rootfs(conf).get("volume") != j.old_volume:
            raise BackendError(
                f"CT {vmid}'s rootfs changed during the {j.op} (now {_rootfs(conf).get('volume')})"
            )
        _set_rootfs(conf, j.new_volume)
        _drop_unused(conf, [j.new_volume, *j.discard])
        if j.old_volume in keep:
            _keep_unused(conf, j.old_volume)
        if current.derived is not None and target.derived is not None:
            apply_derived(conf, current.derived, target.derived)
        _description(conf, current, target)
        st = _record(be, vmid)
        hc = st.healthcheck
        if current.derived is not None and target.derived is not None:
            hc = derived_healthcheck(hc, current.derived, target.derived)
        new_st = dataclasses.replace(
            st,
            image=target.image,
            image_digest=target.image_digest,
            rootfs_volume=target.volume,
            healthcheck=hc,
        )
        j.phase, j.conf, j.state = "swap", conf.render(), new_st.to_json()
        j.generations = [g.to_json() for g in gens]
        save_journal(root, vmid, j)
        faults.point(f"{j.op}-journal")
        be._write_conf(vmid, j.conf)
    faults.point(f"{j.op}-conf")
    save_state(root, new_st)
    save_generations(root, vmid, gens)
    faults.point(f"{j.op}-state")
    for volid in j.discard:
        _discard(be, vmid, volid)
    faults.point(f"{j.op}-discarded")
    clear_journal(root, vmid)


def upgrade(be: PveLocalBackend, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
    from lxcri_core.images import resolve_or_pull
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.spec.model import IdMap

    cfg = be.cfg
    vmid = be._resolve(ref)
    with _exclusive(be, vmid):
        recover(be, vmid)
        st = _record(be, vmid)
        conf = _conf(be, vmid)
        name = conf.main.get("hostname") or st.name
        store, rec = resolve_or_pull(
            cfg, req.image or st.image, pull=req.pull, insecure=req.insecure
        )
        digest = rec.descriptor.digest
        result = UpgradeResult(vmid, name, rec.name, st.image_digest, digest, "unchanged")
        if digest == st.image_digest:
            return dataclasses.replace(result, message=f"already at {digest}")
        old_volume = _rootfs(conf).get("volume", "")
        if old_volume != st.rootfs_volume:
            raise BackendError(
                f"CT {vmid}'s rootfs is {old_volume}, not the {st.rootfs_volume} lxcri made; "
                "it was changed by hand, lxcri does not upgrade it"
            )
        sto = _storage(be, old_volume)
        gens = _generations(be, vmid, st, conf)
        disk = _free_disk(be, vmid, sto, conf)
        new_volume = (
            f"{sto.id}:subvol-{vmid}-disk-{disk}"
            if sto.type == "zfspool"
            else f"{sto.id}:{vmid}/subvol-{vmid}-disk-{disk}.subvol"
        )
        j = Journal("upgrade", "build", old_volume, new_volume, built=new_volume)
        save_journal(cfg.root, vmid, j)
        faults.point("upgrade-build")
        unprivileged = conf.main.get("unprivileged") == "1"
        idmap = IdMap(100000, 65536) if unprivileged else None
        try:
            with store.in_use():
                manifest = Manifest.parse(store.read_blob(digest))
                image_config = load_json(store.read_blob(manifest.config.digest), "image config")
                volid, rootpath = pve_storage.create_rootfs(
                    cfg, sto, store, digest, idmap, vmid, cfg.pve_rootfs_size, disk=disk
                )
            assert volid == new_volume, (volid, new_volume)
            faults.point("upgrade-built")
            derived = image_derived(image_config, name, rootpath, rec.name)
            if gens[0].derived is not None:  # what the swap writes must be a valid pct.conf
                from lxcri_core.spec.pve_config import parse_pve_config

                try:
                    apply_derived(parse_pve_config(conf.render()), gens[0].derived, derived)
                except SpecError as e:
                    raise BackendError(f"image {rec.name}: {e}") from None
        except BaseException:
            recover(be, vmid)  # removes what was built
            raise
        new = GenRecord(gens[0].number + 1, rec.name, digest, _now(), new_volume, derived)
        running = be._state(vmid)[0] == "RUNNING"
        new = dataclasses.replace(new, started=running)
        older = [dataclasses.replace(gens[0], started=False), *gens[1:]]
        kept, pruned = older[: cfg.keep_generations], older[cfg.keep_generations :]
        j.discard = [g.volume for g in pruned]
        try:
            be.stop(CtRef(str(vmid)))
            faults.point("upgrade-stopped")
            _swap(be, vmid, j, gens[0], new, [new, *kept], [g.volume for g in kept])
        except Exception:
            recover(be, vmid)  # finishes a swap pct.conf shows, else undoes it
            if running and be._state(vmid)[0] != "RUNNING":
                with contextlib.suppress(BackendError):
                    be.start(CtRef(str(vmid)))
            raise
        log.info("upgraded", vmid=vmid, image=rec.name, old=st.image_digest, new=digest)
        result = dataclasses.replace(result, outcome="upgraded", started=running)
    if running:
        try:
            be.start(CtRef(str(vmid)))
        except BackendError as e:
            if not kept:
                return dataclasses.replace(result, outcome="failed", message=str(e))
            back = rollback(be, CtRef(str(vmid)), restart=True)
            return dataclasses.replace(
                result,
                outcome="rolled-back",
                message=f"the new image did not start: {e}; rolled back to {back.new_digest}",
                started=back.started,
            )
    return result


def rollback(be: PveLocalBackend, ref: CtRef, *, restart: bool | None = None) -> UpgradeResult:
    """Back to the newest kept generation; restarted when the CT runs, or when the
    upgrade that made the current one started it and no one has stopped it since."""
    vmid = be._resolve(ref)
    with _exclusive(be, vmid):
        recover(be, vmid)
        st = _record(be, vmid)
        conf = _conf(be, vmid)
        gens = _generations(be, vmid, st, conf)
        current_volume = _rootfs(conf).get("volume", "")
        if gens[0].volume != current_volume or len(gens) < 2:
            raise BackendError(f"CT {vmid} has no earlier generation to roll back to")
        current, target = gens[0], gens[1]
        if not _referenced(conf, target.volume):
            raise BackendError(
                f"CT {vmid}'s generation {target.number} ({target.volume}) is no longer in its "
                "config; it cannot be rolled back to"
            )
        running = be._state(vmid)[0] == "RUNNING"
        if restart is None:
            stopped = (state_dir(be.cfg.root, vmid) / STOP_REQUESTED).exists()
            restart = running or (current.started and not stopped)
        j = Journal("rollback", "build", current.volume, target.volume, discard=[current.volume])
        save_journal(be.cfg.root, vmid, j)
        be.stop(CtRef(str(vmid)))
        faults.point("rollback-stopped")
        back = dataclasses.replace(target, started=False)
        _swap(be, vmid, j, current, back, [back, *gens[2:]], [])
        log.info("rolled back", vmid=vmid, image=target.image, digest=target.image_digest)
    if restart:
        be.start(CtRef(str(vmid)))
    name = conf.main.get("hostname") or st.name
    return UpgradeResult(
        vmid,
        name,
        target.image,
        current.image_digest,
        target.image_digest,
        "rolled-back",
        message=f"rolled back to generation {target.number} ({target.image_digest})",
        started=bool(restart),
    )


def history(be: PveLocalBackend, ref: CtRef) -> list[Generation]:
    """The generations, after finishing or undoing an interrupted upgrade or rollback
    (none is running: its lock is free), so the list is what pct.conf runs."""
    from lxcri_core.fsutil import flocked

    vmid = be._resolve(ref)
    with (
        contextlib.suppress(LockTimeout),
        flocked(_lock_path(be, vmid), timeout=0, on_wait=lambda _m: None),
    ):
        recover(be, vmid)
    st = _record(be, vmid)
    conf = _conf(be, vmid)
    current = _rootfs(conf).get("volume", "")
    return [
        Generation(g.number, g.image, g.image_digest, g.created, g.volume == current, g.volume)
        for g in _generations(be, vmid, st, conf)
    ]
