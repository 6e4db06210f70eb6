"""The zfs-fuse fixtures for every pve test module: defined once here, so a session
running several of them makes one pool, not one per module (same name: a clash)."""

from tests.support.zfs import zfs_dataset, zfs_fuse, zfs_pool

__all__ = ["zfs_dataset", "zfs_fuse", "zfs_pool"]
