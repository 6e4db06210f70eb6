"""Proxmox's per-CT config lock: ``flock`` on ``/run/lock/lxc/pve-config-VMID.lock``.

pct, pvesh and the API (PVE::LXC::Config->lock_config) take this lock around
every read-modify-write of ``/etc/pve/lxc/VMID.conf``; lxcri takes the same
one when it writes the file itself, so neither side loses the other's change.
PVE gives up after 10 seconds; so does lxcri (or sooner, with a smaller
``lock_timeout``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lxcri_core.errors import BackendError, LockTimeout
from lxcri_core.fsutil import flocked

LOCK_DIR = Path("/run/lock/lxc")
#: PVE's own wait for the config lock (PVE::Tools::lock_file's default).
PVE_LOCK_WAIT = 10.0


def lock_path(vmid: int, lock_dir: Path = LOCK_DIR) -> Path:
    return lock_dir / f"pve-config-{vmid}.lock"


@contextlib.contextmanager
def config_lock(vmid: int, timeout: float, lock_dir: Path = LOCK_DIR) -> Iterator[None]:
    """Hold CT ``vmid``'s config lock; a BackendError after ``timeout`` seconds."""
    path = lock_path(vmid, lock_dir)
    try:
        with flocked(path, timeout=min(timeout, PVE_LOCK_WAIT), on_wait=lambda _m: None):
            yield
    except LockTimeout:
        raise BackendError(
            f"CT {vmid}: its config lock {path} is held by another process (pct, the API or "
            "another lxcri); try again when that operation has finished"
        ) from None
