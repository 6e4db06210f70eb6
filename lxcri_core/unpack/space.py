"""Keep a layer from filling the filesystem it is written to.

A few MB of zstd can declare files of any size, so the unpacker checks the
target filesystem (``statvfs``) before each file large enough to matter,
every ``CHECK_EVERY`` bytes while it writes and every ``CHECK_ENTRIES``
entries, and stops with an ``UnpackError`` before the free space (or free
inodes) would fall below the reserve. The reserve protects what the host
needs the disk for; the caller removes what the layer wrote.
"""

from __future__ import annotations

import os

from lxcri_core.config import min_free_bytes
from lxcri_core.errors import UnpackError
from lxcri_core.unpack.model import WriteLimits

CHECK_EVERY = 64 << 20  # bytes written between two statvfs calls
CHECK_ENTRIES = 4096  # entries created between two statvfs calls
BLOCK = 4096  # what a file costs at least, for the estimate between calls
#: Free inodes to keep, like the space reserve: 5 % of them or 100000, whichever is smaller.
INODE_SHARE, INODE_CAP = 5, 100_000


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class SpaceGuard:
    """Checks one layer's writes against the limits; one instance per layer."""

    def __init__(self, fd: int, target: str, limits: WriteLimits, what: str) -> None:
        self.fd, self.target, self.limits, self.what = fd, target, limits, what
        st = os.fstatvfs(fd)
        # A filesystem that reports no size (tmpfs without a size, some FUSE
        # filesystems) cannot be measured: only max_bytes applies there.
        self.sized = st.f_blocks > 0
        self.reserve = min_free_bytes(limits.min_free, st.f_blocks * st.f_frsize)
        self.inode_reserve = min(st.f_files * INODE_SHARE // 100, INODE_CAP)
        self.written = 0  # file data bytes of this layer
        self._room = 0  # estimated bytes above the reserve
        self._used = 0  # estimated bytes used since the last measure
        self._entries = 0
        self._pending = 0  # bytes of the current file not written yet
        self.measure(None)

    def measure(self, entry: str | None) -> None:
        """Ask the filesystem; fail if what is pending would take it below a reserve."""
        st = os.fstatvfs(self.fd)
        self._room = st.f_bavail * st.f_frsize - self.reserve if self.sized else 1 << 62
        self._used = self._entries = 0
        if self._room - self._pending < 0:
            self._full(entry, self._pending)
        if st.f_files and st.f_favail < self.inode_reserve:
            where = f" at entry {entry!r}" if entry else ""
            raise UnpackError(
                f"{self.what}: stopped{where}: the filesystem of {self.target} has "
                f"{st.f_favail} free inodes left, less than the {self.inode_reserve} it must "
                "keep; the layer is refused"
            )

    def _full(self, entry: str | None, size: int) -> None:
        free = self._room + self.reserve
        what = f"entry {entry!r} (another {human(size)})" if size else f"entry {entry!r}"
        at = f" at {what}" if entry else ""
        raise UnpackError(
            f"{self.what}: stopped{at}: the filesystem of {self.target} has {human(free)} "
            f"free and must keep {human(self.reserve)} (unpack_min_free = "
            f"{self.limits.min_free}); the layer is refused"
        )

    def entry(self, name: str) -> None:
        """Any entry: inodes and metadata blocks, measured every ``CHECK_ENTRIES``."""
        self._entries += 1
        self._room -= BLOCK // 8
        if self._entries >= CHECK_ENTRIES or self._room < 0:
            self.measure(name)

    def before_file(self, name: str, size: int) -> None:
        """A regular file of ``size`` bytes is about to be written: refuse it if it cannot fit."""
        cap = self.limits.max_bytes
        if cap and self.written + size > cap:
            raise UnpackError(
                f"{self.what}: entry {name!r} takes the layer's file data to "
                f"{human(self.written + size)}, over max_layer_bytes ({human(cap)}); "
                "the layer is refused"
            )
        self._pending = -(-size // BLOCK) * BLOCK
        if self._pending > self._room or self._used >= CHECK_EVERY:
            self.measure(name)
        self.written += size

    def wrote(self, name: str, n: int) -> None:
        """``n`` more bytes of the current file are on disk."""
        n = -(-n // BLOCK) * BLOCK
        self._room -= n
        self._used += n
        self._pending = max(0, self._pending - n)
        if self._used >= CHECK_EVERY:
            # Others write to this filesystem too: ask it again now and then.
            self.measure(name)
