"""Removing a container (rootfs, address, anonymous volumes, state); a half-created one too."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lxcri_core.config import Config
from lxcri_core.containers import lxc, vmids
from lxcri_core.containers.lifecycle import stop
from lxcri_core.containers.locks import _name_lock
from lxcri_core.containers.netplan import _release_address
from lxcri_core.containers.private import (
    unmount_volumes,
)
from lxcri_core.containers.record import (
    STOP_REQUESTED,
    ContainerRecord,
    load_record,
    lxcpath,
    state_dir,
)
from lxcri_core.containers.runstate import supervisor_pid
from lxcri_core.containers.volumes import remove_anonymous
from lxcri_core.errors import BackendError, ContainerNotFound, CorruptState
from lxcri_core.fsutil import flocked, is_mountpoint
from lxcri_core.log import get_logger

log = get_logger(__name__)


def remove(cfg: Config, name: str, *, force: bool = False) -> None:
    """Remove ``name``: rootfs, address, anonymous volumes, state. Named volumes stay."""
    from lxcri_core.containers import generations

    sdir = state_dir(cfg.root, name)
    with _name_lock(cfg, name):
        generations.recover(cfg, name)  # an interrupted upgrade: its state dir first
    with _name_lock(cfg, name), flocked(sdir / "start.lock") if sdir.is_dir() else _nothing():
        try:
            rec = load_record(cfg.root, name)
        except CorruptState as e:
            # a record that does not parse is no half-created container: it may run
            if not force:
                raise CorruptState(
                    f"{e}; the container may be running: `lxcri rm --force {name}` stops it "
                    "and removes what is left"
                ) from None
            _kill_unreadable(cfg, name, sdir)
            _remove_half_created(cfg, sdir)
            vmids.release(cfg.root, name)
            return
        except ContainerNotFound:
            if not sdir.is_dir():
                raise
            _remove_half_created(cfg, sdir)
            vmids.release(cfg.root, name)
            return
        _remove_locked(cfg, rec, sdir, force)
        vmids.release(cfg.root, name)


def _kill_unreadable(cfg: Config, name: str, sdir: Path) -> None:
    """End a container whose record is unreadable: its supervisor, then LXC's container."""
    import os
    import signal

    pid = supervisor_pid(sdir)
    if pid:
        (sdir / STOP_REQUESTED).write_bytes(b"")  # no restart after this kill
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if lxc.active(name, lxcpath(cfg)):
        lxc.stop(name, lxcpath(cfg), 0, kill=True)


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
        from lxcri_core.network import ports
        from lxcri_core.storage import BACKENDS, open_backend

        with contextlib.suppress(Exception):
            ports.unpublish(cid)

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
    running = lxc.active(name, lxcpath(cfg)) or supervisor_pid(sdir)
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
        open_backend(cfg, rec.storage).remove_rootfs(rec.rootfs_key)
    except Exception as e:
        log.warning("rootfs removal failed", name=name, error=str(e))
    from lxcri_core.containers import generations

    generations.remove_all(cfg, name)  # the roots it had before upgrades
    remove_anonymous(cfg.root, rec.id)
    _rmtree_unmounted(sdir)
    log.info("container removed", name=name, id=rec.id)
