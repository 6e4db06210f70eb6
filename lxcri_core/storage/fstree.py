"""Directory trees: disk usage (each inode once, like ``du -s``), removal."""

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


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a tree, a file or nothing)."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


#: Prefix of what is being built or deleted: cleaned up by the next operation.
TMP = ".tmp-"


def keyed_dirs(base: Path) -> dict[str, Path]:
    """Chain key -> directory for every complete entry of ``base`` (its meta.json key)."""
    import json

    out: dict[str, Path] = {}
    if not base.is_dir():
        return out
    for p in sorted(base.iterdir()):
        if p.name.startswith(TMP) or not p.is_dir():
            continue
        try:
            key = str(json.loads((p / "meta.json").read_bytes())["key"])
        except (OSError, ValueError, KeyError):
            key = p.name
        out[key] = p
    return out


def remove_renamed(path: Path) -> None:
    """Delete ``path`` by renaming it to a temp name first: a crash mid-delete
    leaves the temp name (cleaned later), never a half-deleted entry."""
    tmp = path.with_name(TMP + path.name)
    remove_tree(tmp)
    if path.exists():
        os.rename(path, tmp)
        remove_tree(tmp)
