"""Storage backends for root filesystems: dir, overlay, zfs.

One interface (``StorageBackend``): ``prepare_image`` unpacks an image's
layer chain once, ``create_rootfs`` gives a container a rootfs on top of it,
``remove_rootfs``, ``usage`` and ``prune`` (which keeps every chain an image
or a container uses). ``open_backend`` picks one from the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxcri_core.errors import StorageError
from lxcri_core.storage.base import PruneResult, StorageBackend, Usage
from lxcri_core.storage.chain import ChainLayer, ImageChain, chain_ids, load_chain
from lxcri_core.storage.rootfs import Rootfs

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.store.layout import Store

__all__ = [
    "BACKENDS",
    "ChainLayer",
    "ImageChain",
    "PruneResult",
    "Rootfs",
    "StorageBackend",
    "Usage",
    "chain_ids",
    "default_backend",
    "load_chain",
    "open_backend",
    "prune_backends",
]

BACKENDS = ("dir", "overlay", "zfs")


def default_backend(cfg: Config) -> str:
    """``overlay`` where the kernel has it and a test mount works, else ``dir``."""
    from lxcri_core.storage.overlay import overlay_supported

    return "overlay" if overlay_supported(cfg.root / "storage") else "dir"


def open_backend(cfg: Config, name: str | None = None) -> StorageBackend:
    """The backend ``name`` (a command's ``--storage``), else ``cfg.storage``."""
    name = name or cfg.storage
    if name == "auto":
        name = default_backend(cfg)
    if name == "dir":
        from lxcri_core.storage.dirs import DirBackend

        return DirBackend(cfg)
    if name == "overlay":
        from lxcri_core.storage.overlay import OverlayBackend

        return OverlayBackend(cfg)
    if name == "zfs":
        from lxcri_core.storage.zfs import ZfsBackend

        return ZfsBackend(cfg)
    raise StorageError(f"unknown storage backend {name!r}; use auto, dir, overlay or zfs")


def prune_backends(cfg: Config, store: Store) -> dict[str, PruneResult]:
    """Prune every backend that holds state (what ``lxcri image prune`` calls).

    A chain survives when an image still in ``store`` or any container uses
    it. The zfs backend is pruned only when ``zfs_pool`` is configured.
    """
    out: dict[str, PruneResult] = {}
    # exclusive: a create holds the store lease from prepare_image to
    # create_rootfs, so a chain cannot be judged unused in between
    with store.exclusive():
        live = store.reachable()
        for name in BACKENDS:
            if not (cfg.root / "storage" / name).is_dir() or (name == "zfs" and not cfg.zfs_pool):
                continue
            out[name] = open_backend(cfg, name).prune(live)
    return out
