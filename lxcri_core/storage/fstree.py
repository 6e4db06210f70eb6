"""Directory trees: disk usage (each inode once, like ``du -s``), syncfs, removal."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def disk_usage(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes allocated below ``path``; hardlinks (and inodes in ``seen``) count once."""
    seen = set() if seen is None else seen
    total = 0
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_blocks * 512
        if os.path.isdir(top) and not os.path.islink(top):
            try:
                with os.scandir(top) as it:
                    stack.extend(e.path for e in it)
            except (FileNotFoundError, NotADirectoryError):
                continue
    return total


def syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path``, so a rename after it publishes durable data.

    Layers are unpacked without an fsync per file; one syncfs before the
    final rename is cheaper and gives the same guarantee.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            os.sync()  # syncfs unavailable: the global sync still makes it durable
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a tree, a file or nothing)."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
