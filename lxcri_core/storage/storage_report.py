"""``lxcri inspect-storage``'s data: ZFS pools and chains, overlay/dir layer trees.

One call reads each source once: ``zpool list``, ``zpool status`` and one
``zfs`` listing (of ``pool`` or the configured ``zfs_pool``, else of every
pool), lxcri's zfs registry (refs.json) for the images and containers it
keeps chains for, and the image store for which images are still live (what
a prune keeps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxcri_core.errors import StorageError
from lxcri_core.storage.layers_inspect import StoredDir, read_dirs
from lxcri_core.storage.refs import Refs, load_refs
from lxcri_core.storage.zfs_inspect import (
    Pool,
    PoolStatus,
    ZDataset,
    ZfsReader,
    check_dataset_name,
)
from lxcri_core.storage.zfs_tree import PruneEstimate, ZfsTree, build_tree, prune_estimate

if TYPE_CHECKING:
    from lxcri_core.config import Config


@dataclass(frozen=True)
class ZfsReport:
    root: str  # the dataset listed ("" every pool)
    flavour: str  # openzfs or zfs-fuse
    pools: list[Pool]
    status: list[PoolStatus]
    datasets: list[ZDataset]
    tree: ZfsTree
    prune: PruneEstimate  # of the layers `lxcri image prune` prunes: zfs_pool's
    prune_root: str = ""  # zfs_pool; "" when prune touches no zfs layer
    skipped_lines: int = 0


@dataclass(frozen=True)
class StorageReport:
    zfs: ZfsReport | None
    zfs_error: str = ""  # why there is no zfs part ("" when there is, or none was asked)
    dirs: list[StoredDir] = field(default_factory=list)


def _live_images(cfg: Config) -> set[str]:
    """Manifests still in the image store (a prune keeps their chains)."""
    from lxcri_core.store.layout import Store

    if not (cfg.image_store / "index.json").is_file():
        return set()
    return Store(cfg.image_store, lock_timeout=cfg.lock_timeout).reachable()


def zfs_report(cfg: Config, pool: str | None, reader: ZfsReader, refs: Refs) -> ZfsReport:
    """The ZFS part: ``pool`` (a pool or dataset), else ``cfg.zfs_pool``, else every pool."""
    root = check_dataset_name(pool) if pool else cfg.zfs_pool.strip("/")
    pool_name = root.split("/", 1)[0] if root else None
    pools = reader.pools(pool_name)
    status = reader.status(pool_name)
    listing = reader.datasets(root or None)
    images = {m: {k for ch in chains.values() for k in ch} for m, chains in refs.images.items()}
    cts = {cid: c.chain for cid, c in refs.containers.items()}
    keep = refs.in_use(_live_images(cfg))
    # `lxcri image prune` prunes the layers below zfs_pool only (prune_backends)
    prune_root = cfg.zfs_pool.strip("/")
    prune = prune_estimate(listing.datasets, keep, prune_root) if prune_root else None
    return ZfsReport(
        root,
        "zfs-fuse" if reader.fuse else "openzfs",
        pools,
        status,
        listing.datasets,
        build_tree(listing.datasets, images, cts),
        prune or PruneEstimate((), 0, ()),
        prune_root,
        listing.skipped,
    )


def storage_report(
    cfg: Config, pool: str | None = None, reader: ZfsReader | None = None
) -> StorageReport:
    """Everything ``inspect-storage`` shows. With ``pool`` only that ZFS pool or dataset
    (a failure is an error); without, ZFS is read when it answers, else said why not."""
    reader = reader or ZfsReader()
    refs = load_refs(cfg.root / "storage" / "zfs" / "refs.json")
    if pool:
        return StorageReport(zfs_report(cfg, pool, reader, refs))
    try:
        zfs: ZfsReport | None = zfs_report(cfg, None, reader, refs)
        why = ""
    except StorageError as e:
        if cfg.zfs_pool:
            raise
        zfs, why = None, str(e)
    return StorageReport(zfs, why, read_dirs(cfg))
