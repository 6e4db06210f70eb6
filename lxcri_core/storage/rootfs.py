"""A container's root filesystem as a backend made it, and how to mount it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import is_mountpoint, mounts
from lxcri_core.storage.cmd import run_cmd


@dataclass(frozen=True)
class Rootfs:
    """Where a container's rootfs lives.

    - ``dir``: ``path`` is the flattened rootfs directory.
    - ``overlay``: ``lowerdirs`` (top layer first), ``upperdir`` and
      ``workdir``; ``path`` is the default mount point. ``mount(target)``
      mounts the overlay there.
    - ``zfs``: ``dataset`` is the clone, ``path`` its mountpoint (for
      Proxmox, ``<pool>/subvol-<vmid>-disk-0`` is an ordinary volume).

    ``mount``/``umount`` work for all three (dir and zfs by bind mount), so a
    caller can put any rootfs at the path LXC expects.
    """

    backend: str
    container_id: str
    chain_key: str
    path: Path
    lowerdirs: tuple[Path, ...] = ()
    upperdir: Path | None = None
    workdir: Path | None = None
    dataset: str | None = None

    def overlay_options(self) -> tuple[str, Path]:
        """The overlay mount option string and the directory to mount from.

        Lower dirs are given relative to their common parent (the layers
        directory) and the mount runs there: the option string must fit in
        one page, and absolute paths of many layers would not.
        """
        if not self.lowerdirs or self.upperdir is None or self.workdir is None:
            raise StorageError(f"rootfs of {self.container_id} is not an overlay")
        base = Path(os.path.commonpath([str(p) for p in self.lowerdirs]))
        if len(self.lowerdirs) == 1:
            base = self.lowerdirs[0].parent
        lowers = ":".join(str(p.relative_to(base)) for p in self.lowerdirs)
        opts = f"lowerdir={lowers},upperdir={self.upperdir},workdir={self.workdir}"
        if len(opts) >= os.sysconf("SC_PAGESIZE"):
            raise StorageError(
                f"overlay options for {self.container_id} are {len(opts)} bytes, more than a "
                "page; the image has too many layers for overlay, use the dir or zfs backend"
            )
        return opts, base

    def mount(self, target: Path | None = None) -> Path:
        """Mount the rootfs at ``target`` (default ``path``) and return the mount point."""
        target = Path(target) if target is not None else self.path
        target.mkdir(parents=True, exist_ok=True)
        if self.backend == "overlay":
            opts, base = self.overlay_options()
            run_cmd(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], cwd=base)
        elif target != self.path:
            if not self.path.is_absolute() or not self.path.is_dir():
                raise StorageError(
                    f"rootfs of {self.container_id} is not available at {self.path!s}; "
                    "is its dataset mounted?"
                )
            run_cmd(["mount", "--bind", str(self.path), str(target)])
        return target

    def umount(self, target: Path | None = None) -> None:
        """Undo ``mount``; a target that is not mounted is left alone."""
        target = Path(target) if target is not None else self.path
        if self.backend != "overlay" and target == self.path:
            return
        if is_mountpoint(target):
            run_cmd(["umount", str(target)])


__all__ = ["Rootfs", "is_mountpoint", "mounts"]
