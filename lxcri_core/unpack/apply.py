"""Apply one layer tar to a directory, safely.

Every path is resolved component by component from a directory fd opened on
the target, with ``O_NOFOLLOW`` at each step, so no entry can make us write
outside the target whatever symlinks earlier entries planted. A parent that
is a symlink is followed only when it is relative and stays inside the
target (resolved lexically, then walked again with ``O_NOFOLLOW``); absolute
paths, ``..`` components, absolute or escaping parent symlinks, hardlinks to
outside and escaping whiteouts fail the layer with an ``UnpackError``.

Whiteouts follow the OCI image-layer spec: they hide only what lower layers
left (entries of the same layer survive), and ``overlay=True`` turns them
into overlayfs's form instead of deleting.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

from lxcri_core.digest import is_digest
from lxcri_core.errors import LxcriError, UnpackError
from lxcri_core.log import get_logger
from lxcri_core.media import layer_compression
from lxcri_core.spec.model import IdMap
from lxcri_core.unpack.model import LayerStats, WriteLimits, shift
from lxcri_core.unpack.space import CHECK_EVERY, SpaceGuard
from lxcri_core.unpack.stream import LayerStream
from lxcri_core.unpack.tarstream import (
    CHAR,
    DIR,
    FIFO,
    HARDLINK,
    REG,
    SYMLINK,
    Header,
    TarReader,
    show,
)
from lxcri_core.unpack.xattrs import Dropped, layer_xattr

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WH = b".wh."
OPAQUE = b".wh..wh..opq"
META_WH = b".wh..wh."  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): never applied
OVERLAY_OPAQUE = "trusted.overlay.opaque"  # lxcri's own; never copied from a layer
MAX_SYMLINK_DEPTH = 40


def split_path(name: bytes, what: str, role: str = "entry") -> tuple[bytes, ...]:
    """The components of a member name; absolute names and ``..`` are refused."""
    if name.startswith(b"/"):
        raise UnpackError(
            f"{what}: {role} {show(name)!r} is an absolute path; layer paths must be relative "
            "to the root, so the layer is refused"
        )
    parts = tuple(p for p in name.split(b"/") if p and p != b".")
    if b".." in parts:
        raise UnpackError(
            f"{what}: {role} {show(name)!r} has a '..' component that could leave the target; "
            "the layer is refused"
        )
    return parts


def _join(parts: tuple[bytes, ...]) -> bytes:
    return b"/".join(parts)


def _fd_cache_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 2048
    return max(16, min(2048, soft // 4))


class Applier:
    """Applies tar members to one target directory; one instance per layer."""

    def __init__(
        self,
        target: Path,
        idmap: IdMap | None,
        overlay: bool,
        what: str,
        limits: WriteLimits | None = None,
    ) -> None:
        self.what = what
        self.idmap = idmap
        self.overlay = overlay
        self.log: Any = get_logger(__name__)
        try:
            self.root = os.open(target, O_DIR)
        except OSError as e:
            raise UnpackError(
                f"{what}: cannot open the target directory {target}: {e.strerror}"
            ) from None
        # literal path -> (fd, physical path): most entries' parents are cached
        self.dirs: dict[bytes, tuple[int, tuple[bytes, ...]]] = {b"": (self.root, ())}
        self.stale: list[int] = []
        self.limit = _fd_cache_limit()
        self.seen: set[bytes] = set()  # paths this layer created (whiteouts spare them)
        self.dir_meta: list[tuple[tuple[bytes, ...], int, int]] = []
        self.can_chown = os.geteuid() == 0
        # Device nodes only for privileged targets: an unprivileged container
        # cannot use host device nodes shipped in an image anyway.
        self.devices = self.can_chown and idmap is None
        self.files = 0
        self.bytes = 0
        self.skipped: list[str] = []
        try:
            self.guard = SpaceGuard(self.root, str(target), limits or WriteLimits(), what)
        except BaseException:
            os.close(self.root)
            raise

    # -- ids ------------------------------------------------------------------
    def ids(self, h: Header) -> tuple[int, int]:
        m = self.idmap
        if m is None:
            return h.uid, h.gid
        hu, hg = m.host_id(h.uid), m.host_id(h.gid)
        if hu is not None and hg is not None:
            return hu, hg
        what = f"{self.what}: entry {show(h.name)!r}"
        return shift(m, h.uid, what), shift(m, h.gid, what)

    def root_ids(self) -> tuple[int, int]:
        if self.idmap is None:
            return 0, 0
        root = shift(self.idmap, 0, f"{self.what}: the root directory")
        return root, root

    # -- directory fds -------------------------------------------------------
    def invalidate(self) -> None:
        """Forget cached directory fds (after something was removed or replaced).

        The fds are closed only after the current entry, which may still use them.
        """
        for key, (fd, _) in self.dirs.items():
            if key:
                self.stale.append(fd)
        self.dirs = {b"": (self.root, ())}

    def release(self) -> None:
        for fd in set(self.stale):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stale.clear()

    def dir_fd(self, parts: tuple[bytes, ...], entry: bytes, create: bool = True) -> int | None:
        """An fd of the directory ``parts`` inside the target, or None if missing."""
        hit = self.resolve(parts, entry, create, 0)
        return None if hit is None else hit[0]

    def resolve(
        self, parts: tuple[bytes, ...], entry: bytes, create: bool, depth: int
    ) -> tuple[int, tuple[bytes, ...]] | None:
        """(fd, physical path) of directory ``parts``; symlinks resolved inside the target."""
        key = _join(parts)
        hit = self.dirs.get(key)
        if hit is not None:
            return hit
        up = self.resolve(parts[:-1], entry, create, depth)
        if up is None:
            return None
        parent, phys = up
        name = parts[-1]
        try:
            fd = os.open(name, O_DIR, dir_fd=parent)
            phys = (*phys, name)
        except FileNotFoundError:
            if not create:
                return None
            fd = self._implicit_dir(parent, name, key)
            phys = (*phys, name)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            got = self._through_symlink(parent, phys, parts, entry, create, depth)
            if got is None:
                return None
            fd, phys = got
        if len(self.dirs) >= self.limit:
            self.invalidate()  # closed after this entry: callers may hold some of them
        self.dirs[key] = (fd, phys)
        return fd, phys

    def _implicit_dir(self, parent: int, name: bytes, key: bytes) -> int:
        # A parent the tar did not list: created like GNU tar and umoci do.
        os.mkdir(name, 0o755, dir_fd=parent)
        fd = os.open(name, O_DIR, dir_fd=parent)
        if self.can_chown:
            os.fchown(fd, *self.root_ids())
        os.fchmod(fd, 0o755)
        self.seen.add(key)
        return fd

    def _through_symlink(
        self,
        parent: int,
        parent_phys: tuple[bytes, ...],
        parts: tuple[bytes, ...],
        entry: bytes,
        create: bool,
        depth: int,
    ) -> tuple[int, tuple[bytes, ...]] | None:
        name = parts[-1]
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise UnpackError(
                f"{self.what}: entry {show(entry)!r}: its parent {show(_join(parts))!r} "
                "is not a directory"
            )
        link = os.readlink(name, dir_fd=parent)
        # An absolute link means the container's root (Debian's var/run -> /run):
        # it is resolved inside the target, as docker and umoci do, never on the host.
        absolute = link.startswith(b"/")
        if depth >= MAX_SYMLINK_DEPTH:
            raise UnpackError(
                f"{self.what}: entry {show(entry)!r}: too many levels of symlinks under "
                f"{show(_join(parts))!r}"
            )
        # Walk the link one component at a time from the physical parent, so a
        # '..' after another symlink climbs from where that symlink really led.
        cur = () if absolute else parent_phys
        for comp in link.split(b"/"):
            if comp in (b"", b"."):
                continue
            if comp == b"..":
                if not cur and absolute:
                    continue  # "/.." is "/" in the container, as in a chroot
                if not cur:
                    raise UnpackError(
                        f"{self.what}: entry {show(entry)!r} lies under the symlink "
                        f"{show(_join(parts))!r} -> {show(link)!r}, which points outside the "
                        "target; the layer is refused"
                    )
                cur = cur[:-1]
                continue
            step = self.resolve((*cur, comp), entry, create, depth + 1)
            if step is None:
                return None
            cur = step[1]
        hit = self.resolve(cur, entry, create, depth + 1)
        if hit is None:
            return None
        # The cache owns one fd per key; the symlink's key gets its own copy.
        return os.dup(hit[0]), hit[1]

    # -- removal -------------------------------------------------------------
    def remove(self, parent: int, name: bytes) -> None:
        """Delete ``name`` in ``parent`` whatever it is (a directory recursively)."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)  # fd-based, does not follow symlinks
            self.invalidate()
        else:
            os.unlink(name, dir_fd=parent)
            if stat.S_ISLNK(st.st_mode):
                self.invalidate()

    def clear_lower(self, fd: int, prefix: bytes) -> None:
        """Opaque directory: delete what lower layers put under it, keep this layer's."""
        for sname in os.listdir(fd):
            name = os.fsencode(sname)
            key = prefix + b"/" + name if prefix else name
            if key in self.seen:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    sub = os.open(name, O_DIR, dir_fd=fd)
                    try:
                        self.clear_lower(sub, key)
                    finally:
                        os.close(sub)
                continue
            self.remove(fd, name)

    # -- metadata ------------------------------------------------------------
    def xattrs(self, h: Header, target: int | str) -> None:
        for key, raw in h.xattrs.items():
            try:
                value = layer_xattr(key, raw, self.idmap, h.type == REG)
            except Dropped as why:
                self.log.warning(
                    "xattr skipped", layer=self.what, entry=show(h.name), xattr=key, reason=str(why)
                )
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
                self.log.warning(
                    "xattr not supported here; skipped",
                    layer=self.what,
                    entry=show(h.name),
                    xattr=key,
                    error=e.strerror,
                )

    # -- members -------------------------------------------------------------
    def apply(self, h: Header, reader: TarReader) -> None:
        try:
            self._apply(h, reader)
        except OSError as e:
            raise UnpackError(
                f"{self.what}: cannot apply entry {show(h.name)!r}: {e.strerror or e}"
            ) from None
        finally:
            if self.stale:
                self.release()

    def _apply(self, h: Header, reader: TarReader) -> None:
        parts = split_path(h.name, self.what)
        self.guard.entry(show(h.name))
        if not parts:
            if h.type != DIR:
                raise UnpackError(
                    f"{self.what}: entry {show(h.name)!r} names the root but is not a directory"
                )
            self._root_dir(h)
            return
        base = parts[-1]
        if base.startswith(WH):
            self._whiteout(parts, h)
            return
        parent = self.dir_fd(parts[:-1], h.name)
        assert parent is not None
        self.seen.add(_join(parts))
        typ = h.type
        if typ == REG:
            self._file(parent, base, h, reader)
        elif typ == DIR:
            self._dir(parent, parts, h)
        elif typ == SYMLINK:
            self._symlink(parent, base, h)
        elif typ == HARDLINK:
            self._hardlink(parent, parts, h)
        else:
            self._node(parent, base, h)

    def _file(self, parent: int, base: bytes, h: Header, reader: TarReader) -> None:
        name = show(h.name)
        self.guard.before_file(name, h.size)  # refused before a byte is written
        try:
            fd = os.open(base, O_NEWFILE, 0o600, dir_fd=parent)
        except FileExistsError:
            self.remove(parent, base)
            fd = os.open(base, O_NEWFILE, 0o600, dir_fd=parent)
        try:
            left = h.size
            while left:  # in slices, so the guard sees the filesystem fill
                k = min(left, CHECK_EVERY)
                reader.copy_to(fd, k)
                self.guard.wrote(name, k)
                left -= k
            if self.can_chown:
                os.fchown(fd, *self.ids(h))
            os.fchmod(fd, h.mode)  # after chown, which clears setuid/setgid
            if h.xattrs:
                self.xattrs(h, fd)  # after chown, which clears security.capability
            os.utime(fd, ns=(h.mtime_ns, h.mtime_ns))
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += h.size

    def _dir(self, parent: int, parts: tuple[bytes, ...], h: Header) -> None:
        base = parts[-1]
        try:
            os.mkdir(base, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self.remove(parent, base)
                os.mkdir(base, 0o700, dir_fd=parent)
        fd = self.dir_fd(parts, h.name)
        assert fd is not None
        if self.can_chown:
            os.fchown(fd, *self.ids(h))
        if h.xattrs:
            self.xattrs(h, fd)
        # Mode and mtime at the end of the layer: children change the mtime,
        # and a read-only mode must not stop an unprivileged unpack.
        self.dir_meta.append((parts, h.mode, h.mtime_ns))
        self.files += 1

    def _root_dir(self, h: Header) -> None:
        if self.can_chown:
            os.fchown(self.root, *self.ids(h))
        if h.xattrs:
            self.xattrs(h, self.root)
        self.dir_meta.append(((), h.mode, h.mtime_ns))

    def _symlink(self, parent: int, base: bytes, h: Header) -> None:
        try:
            os.symlink(h.linkname, base, dir_fd=parent)
        except FileExistsError:
            self.remove(parent, base)
            os.symlink(h.linkname, base, dir_fd=parent)
        self._meta_by_name(parent, base, h, chmod=False)
        self.files += 1

    def _meta_by_name(self, parent: int, base: bytes, h: Header, chmod: bool) -> None:
        if self.can_chown:
            os.chown(base, *self.ids(h), dir_fd=parent, follow_symlinks=False)
        if chmod:
            os.chmod(base, h.mode, dir_fd=parent)  # a node we just made, not a symlink
        if h.xattrs:
            # No fsetxattr on symlinks or device nodes: name it through the
            # parent's fd, which cannot be redirected.
            self.xattrs(h, f"/proc/self/fd/{parent}/{os.fsdecode(base)}")
        os.utime(base, ns=(h.mtime_ns, h.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, parts: tuple[bytes, ...], h: Header) -> None:
        lparts = split_path(h.linkname, self.what, f"hardlink {show(h.name)!r} target")
        if not lparts:
            raise UnpackError(f"{self.what}: hardlink {show(h.name)!r} points at the root")
        if lparts == parts:
            return
        if show(_join(lparts)) in self.skipped:
            self._skip(h, "it links to an entry that was skipped")
            return
        lparent = self.dir_fd(lparts[:-1], h.name, create=False)
        base = parts[-1]
        if lparent is not None:
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(lparts[-1], dir_fd=lparent, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise UnpackError(
                        f"{self.what}: hardlink {show(h.name)!r} points at the directory "
                        f"{show(h.linkname)!r}"
                    )
                src, fd = lparts[-1], lparent
                try:
                    os.link(src, base, src_dir_fd=fd, dst_dir_fd=parent, follow_symlinks=False)
                except FileExistsError:
                    self.remove(parent, base)
                    os.link(src, base, src_dir_fd=fd, dst_dir_fd=parent, follow_symlinks=False)
                self.files += 1
                return
        raise UnpackError(
            f"{self.what}: hardlink {show(h.name)!r} points at {show(h.linkname)!r}, which "
            "does not exist in the target"
            + (" (an overlay layer can only link within itself)" if self.overlay else "")
        )

    def _node(self, parent: int, base: bytes, h: Header) -> None:
        if h.type == FIFO:
            kind, dev = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if h.type == CHAR else stat.S_IFBLK
            dev = os.makedev(h.devmajor, h.devminor)
            if not self.devices:
                why = "for unprivileged targets" if self.can_chown else "without root"
                self._skip(h, f"device nodes are not created {why}")
                return
        try:
            os.mknod(base, kind | 0o600, dev, dir_fd=parent)
        except FileExistsError:
            self.remove(parent, base)
            os.mknod(base, kind | 0o600, dev, dir_fd=parent)
        except PermissionError:
            self._skip(h, "no permission to create device nodes")
            return
        self._meta_by_name(parent, base, h, chmod=True)
        self.files += 1

    def _skip(self, h: Header, why: str) -> None:
        self.skipped.append(show(h.name))
        self.log.warning("entry skipped", layer=self.what, entry=show(h.name), reason=why)

    def _whiteout(self, parts: tuple[bytes, ...], h: Header) -> None:
        base, dparts = parts[-1], parts[:-1]
        if base == OPAQUE:
            if self.overlay:
                fd = self.dir_fd(dparts, h.name)
                assert fd is not None
                os.setxattr(fd, OVERLAY_OPAQUE, b"y")
                self.seen.add(_join(dparts))
            else:
                fd = self.dir_fd(dparts, h.name, create=False)
                if fd is not None:
                    self.clear_lower(fd, _join(dparts))
            return
        if base.startswith(META_WH):
            return
        name = base[len(WH) :]
        if name in (b"", b".", b".."):
            raise UnpackError(
                f"{self.what}: whiteout {show(h.name)!r} names {show(name)!r}, which would "
                "escape its directory; the layer is refused"
            )
        key = _join((*dparts, name))
        if key in self.seen:
            return  # a whiteout hides lower layers only, never its own layer
        if self.overlay:
            parent = self.dir_fd(dparts, h.name)
            assert parent is not None
            try:
                os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            except FileExistsError:
                self.remove(parent, name)
                os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            if self.can_chown:
                os.chown(name, *self.ids(h), dir_fd=parent, follow_symlinks=False)
            return
        parent = self.dir_fd(dparts, h.name, create=False)
        if parent is not None:
            self.remove(parent, name)

    # -- end of layer ----------------------------------------------------------
    def finish(self) -> None:
        """Directory modes and mtimes, last, deepest first."""
        for parts, mode, mtime_ns in reversed(self.dir_meta):
            try:
                fd = self.dir_fd(parts, b"/".join(parts), create=False) if parts else self.root
                if fd is None:
                    continue  # removed later in the layer
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            except OSError as e:
                raise UnpackError(
                    f"{self.what}: cannot set the mode of directory {show(_join(parts))!r}: "
                    f"{e.strerror}"
                ) from None
            # fds the cache let go of while resolving: close them now, not at the
            # end, or a layer with many directories runs out of file descriptors
            self.release()
        self.release()

    def close(self) -> None:
        self.invalidate()
        self.release()
        os.close(self.root)


def apply_layer(
    src: BinaryIO,
    media_type: str,
    target: Path,
    *,
    diff_id: str | None = None,
    idmap: IdMap | None = None,
    overlay: bool = False,
    limits: WriteLimits | None = None,
) -> LayerStats:
    """Apply one layer (compressed per ``media_type``) read from ``src`` onto ``target``.

    ``target`` may already hold lower layers (flattening); with
    ``overlay=True`` it is a fresh overlay layer dir and whiteouts become
    0/0 character devices and ``trusted.overlay.opaque=y``. ``diff_id``, when
    given, is checked against the sha256 of the uncompressed tar. On any
    error the target is left part-written: callers stage into a scratch
    directory and rename it into place only on success (as ``unpack_image`` does).
    ``limits`` (default: ``WriteLimits()``) stops a layer before the target
    filesystem falls below its reserve or the layer past ``max_bytes``.
    """
    what = f"layer {diff_id}" if diff_id else "layer"
    try:
        compression = layer_compression(media_type)
    except LxcriError as e:
        raise UnpackError(f"{what}: {e}; only tar, tar+gzip and tar+zstd layers exist") from None
    if diff_id is not None and not is_digest(diff_id):
        raise UnpackError(f"{what}: diff_id {diff_id!r} is not a sha256 digest")
    applier = Applier(Path(target), idmap, overlay, what, limits)
    stream = LayerStream(src, compression, what)
    try:
        reader = TarReader(stream.chunks(), what)
        while (h := reader.next()) is not None:
            applier.apply(h, reader)
        applier.finish()
        reader.drain()
    finally:
        stream.close()
        applier.close()
    if diff_id is not None and stream.digest != diff_id:
        raise UnpackError(
            f"{what}: the uncompressed layer hashes to {stream.digest}, not its diff_id; "
            "the blob or the image config is corrupt, remove the image and pull it again"
        )
    if applier.skipped:
        applier.log.warning(
            "entries skipped", layer=what, count=len(applier.skipped), first=applier.skipped[0]
        )
    return LayerStats(applier.files, applier.bytes, stream.digest)
