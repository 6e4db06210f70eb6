"""A container's root filesystem as a backend made it, and how to mount it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxcri_core import mountsys
from lxcri_core.errors import StorageError
from lxcri_core.fsutil import is_mountpoint, mounts


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

    def _overlay_parts(self) -> tuple[tuple[Path, ...], Path, Path]:
        if not self.lowerdirs or self.upperdir is None or self.workdir is None:
            raise StorageError(f"rootfs of {self.container_id} is not an overlay")
        return self.lowerdirs, self.upperdir, self.workdir

    def mount_record(self, target: Path) -> tuple[str, ...]:
        """How the pre-start hook mounts this rootfs at ``target`` (empty: nothing to mount)."""
        if self.backend != "overlay":
            # dir and zfs: bound into the state dir, so the layer store stays private
            return mountsys.bind_record(self.path, target)
        return mountsys.overlay_record(*self._overlay_parts(), target)

    def mount(self, target: Path | None = None) -> Path:
        """Mount the rootfs at ``target`` (default ``path``) and return the mount point."""
        target = Path(target) if target is not None else self.path
        target.mkdir(parents=True, exist_ok=True)
        if self.backend == "overlay":
            mountsys.overlay(*self._overlay_parts(), target)
        elif target != self.path:
            if not self.path.is_absolute() or not self.path.is_dir():
                raise StorageError(
                    f"rootfs of {self.container_id} is not available at {self.path!s}; "
                    "is its dataset mounted?"
                )
            mountsys.bind(self.path, target)
        return target

    def umount(self, target: Path | None = None) -> None:
        """Undo ``mount``; a target that is not mounted is left alone."""
        target = Path(target) if target is not None else self.path
        if self.backend != "overlay" and target == self.path:
            return
        if is_mountpoint(target):
            mountsys.umount(target)


__all__ = ["Rootfs", "is_mountpoint", "mounts"]
