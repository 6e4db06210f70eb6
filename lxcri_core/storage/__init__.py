"""Storage backends for root filesystems: dir, overlay, zfs."""
