"""``lxcri cp``: files into and out of a container, never through its symlinks to the host.

The container is hostile: its ``/etc`` may be a link to ``/``, its
``/root/.ssh`` a link to the host's. So nothing here opens a container path
by name from the host's root. The container's root is a directory fd —
``/proc/PID/root`` of its init while it runs (its own mount namespace, so
volumes are where the process sees them), the rootfs while stopped — and
the path given is resolved by the kernel *inside* it with ``openat2``
``RESOLVE_IN_ROOT`` (absolute links and ``..`` stop at the container's
root, as in a chroot) and ``RESOLVE_NO_MAGICLINKS`` (``/proc/self/root``
of the container's procfs would be *our* root). Below that, trees are
walked one name at a time relative to directory fds with ``O_NOFOLLOW``,
so a component swapped for a link mid-copy is refused, not followed.
Symbolic links are copied as links, never followed (``-L`` follows the
top-level source only, and inside the container's root).

Files copied in are owned by the container's root (the id map's base for an
unprivileged container, as docker does); files copied out are the caller's,
with setuid/setgid bits dropped (a setuid-root copy of a container's file
would be a host root shell) and device nodes, fifos and sockets skipped.

A stopped overlay container's rootfs is mounted only in a private mount
namespace of a child process, so a crash leaves no mount behind; its
volumes are not mounted then, so a path on one is refused with the way out.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core import mountsys
from lxcri_core.config import Config
from lxcri_core.containers import lxc
from lxcri_core.containers.record import ContainerRecord, containers_dir, load_record, state_dir
from lxcri_core.errors import BackendError, StorageError
from lxcri_core.fsutil import flocked

SYS_OPENAT2 = 437  # the same number on every architecture (added after the table merge)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
CLONE_NEWNS = 0x00020000
CHUNK = 1 << 20


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def open_in_root(rootfd: int, path: str, flags: int) -> int:
    """``path`` opened inside ``rootfd`` as a chroot would resolve it (see the module doc)."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(
        SYS_OPENAT2, rootfd, os.fsencode(path or "."), ctypes.byref(how), ctypes.sizeof(how)
    )
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise BackendError("lxcri cp needs openat2 (Linux 5.6 or later)")
        raise OSError(err, os.strerror(err), path)
    return int(fd)


@dataclass
class CopyResult:
    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "skipped": self.skipped}


@dataclass(frozen=True)
class _Side:
    """How entries are written on the destination side."""

    owner: int | None  # chown to (owner, owner); None: leave the caller's
    mode_mask: int  # 0o777 drops setuid/setgid/sticky
    skip: frozenset[tuple[int, int]] = frozenset()  # source dirs not copied (see _Root.api)


def _split(path: str) -> tuple[str, str]:
    """``/a/b/c`` -> (``/a/b``, ``c``); a path naming a directory (``/``, ``a/.``) -> (path, '')."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[-1] in (".", ".."):
        return path or "/", ""
    return "/" + "/".join(parts[:-1]), parts[-1]


def _ct_error(e: OSError, path: str, name: str) -> BackendError:
    what = {
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a component is not a directory",
        errno.ELOOP: "a symbolic link lxcri does not follow there, or a link loop",
        errno.EXDEV: "it crosses a link lxcri does not follow",
        errno.EROFS: "the file system is read-only",
        errno.EISDIR: "it is a directory",
    }.get(e.errno or 0, e.strerror or str(e))
    return BackendError(f"{path} in container {name}: {what}")


# -- the tree copy, fd to fd ------------------------------------------------------
def _write_file(
    src: int, st: os.stat_result, dst_dir: int, name: str, side: _Side, res: CopyResult
) -> None:
    tmp = f".lxcri-cp.{os.getpid()}.{name}"[:255]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dst_dir)
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir)
    try:
        while chunk := os.read(src, CHUNK):
            os.write(out, chunk)  # a short write raises on a full disk
            res.bytes += len(chunk)
        if side.owner is not None:
            os.fchown(out, side.owner, side.owner)
        os.fchmod(out, st.st_mode & side.mode_mask)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dst_dir)
        raise
    os.close(out)
    try:  # replaces a file or a link of that name; a directory there is refused
        os.rename(tmp, name, src_dir_fd=dst_dir, dst_dir_fd=dst_dir)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dst_dir)
        raise
    res.files += 1


def _copy_entry(
    src_dir: int, name: str, dst_dir: int, dst_name: str, side: _Side, res: CopyResult, shown: str
) -> None:
    st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
    if stat.S_ISREG(st.st_mode):
        # O_NONBLOCK: a regular file swapped for a fifo since the stat must not hang us
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                res.skipped.append(shown)
                return
            _write_file(fd, st, dst_dir, dst_name, side, res)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=src_dir)
        tmp = f".lxcri-cp.{os.getpid()}.{dst_name}"[:255]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dst_dir)
        os.symlink(target, tmp, dir_fd=dst_dir)
        if side.owner is not None:
            os.chown(tmp, side.owner, side.owner, dir_fd=dst_dir, follow_symlinks=False)
        os.rename(tmp, dst_name, src_dir_fd=dst_dir, dst_dir_fd=dst_dir)
        res.files += 1
    elif stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_dir)
        try:
            _copy_dir(fd, os.fstat(fd), dst_dir, dst_name, side, res, shown)
        finally:
            os.close(fd)
    else:  # devices, fifos, sockets: never recreated on the other side
        res.skipped.append(shown)


def _copy_dir(
    src: int,
    st: os.stat_result,
    dst_dir: int,
    dst_name: str,
    side: _Side,
    res: CopyResult,
    shown: str,
) -> None:
    if (st.st_dev, st.st_ino) in side.skip:
        res.skipped.append(shown)
        return
    with contextlib.suppress(FileExistsError):
        os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
    # an existing link or file there is refused (ENOTDIR/ELOOP), never followed
    out = os.open(dst_name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_dir)
    try:
        for entry in sorted(os.listdir(src)):
            _copy_entry(src, entry, out, entry, side, res, f"{shown.rstrip('/')}/{entry}")
        if side.owner is not None:
            os.fchown(out, side.owner, side.owner)
        os.fchmod(out, st.st_mode & side.mode_mask)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(out)


# -- the container's root -------------------------------------------------------------
def owner_of(rec: ContainerRecord) -> int:
    """Host uid of the container's root: the id map's base, 0 when privileged."""
    sec = rec.spec.security
    return sec.idmaps[0].host if sec.unprivileged and sec.idmaps else 0


def _mount_targets(rootfd: int, rec: ContainerRecord) -> dict[tuple[int, int], str]:
    """(dev, inode) of each volume/bind mount point in a stopped rootfs -> its path."""
    out = {}
    for m in rec.spec.mounts:
        with contextlib.suppress(OSError):
            fd = open_in_root(rootfd, m.target, os.O_PATH)
            st = os.fstat(fd)
            os.close(fd)
            out[(st.st_dev, st.st_ino)] = m.source or m.target
    return out


def _refuse_volume(rootfd: int, fd: int, targets: dict[tuple[int, int], str], path: str) -> None:
    """Refuse ``fd`` (a directory) if it is at or under a mount point of a stopped container."""
    if not targets:
        return
    root = os.fstat(rootfd)
    cur = os.dup(fd)
    try:
        for _ in range(4096):
            st = os.fstat(cur)
            hit = targets.get((st.st_dev, st.st_ino))
            if hit is not None:
                raise BackendError(
                    f"{path} is on a volume ({hit}) that is mounted only while the container "
                    "runs: start it, or copy to or from the volume's directory "
                    "(`lxcri volume inspect`)"
                )
            if (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino):
                return
            up = os.open("..", os.O_PATH | os.O_DIRECTORY, dir_fd=cur)
            os.close(cur)
            cur = up
    finally:
        os.close(cur)


@dataclass
class _Root:
    fd: int
    owner: int
    targets: dict[tuple[int, int], str]  # only while stopped: mount points not mounted
    #: (dev, inode) of the kernel's file systems mounted in a running container
    #: (/proc, /sys, ...): a tree copy skips them rather than read the kernel's files
    api: frozenset[tuple[int, int]] = frozenset()


API_FS = frozenset(
    [
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "securityfs",
        "debugfs",
        "tracefs",
        "fusectl",
        "configfs",
        "binfmt_misc",
        "pstore",
        "bpf",
        "autofs",
        "hugetlbfs",
        "efivarfs",
    ]
)


def _api_mounts(rootfd: int, pid: int) -> frozenset[tuple[int, int]]:
    out = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) < 5 or right.split()[:1] == [] or right.split()[0] not in API_FS:
                continue
            point = fields[4].replace("\\040", " ").replace("\\011", "\t")
            with contextlib.suppress(OSError):
                fd = open_in_root(rootfd, point, os.O_PATH)
                st = os.fstat(fd)
                os.close(fd)
                out.add((st.st_dev, st.st_ino))
    return frozenset(out)


def _run_in_root(cfg: Config, name: str, fn: Callable[[_Root], CopyResult]) -> CopyResult:
    """Call ``fn`` with the container's root (see the module doc)."""
    from lxcri_core.containers.runstate import supervisor_pid

    rec = load_record(cfg.root, name)
    lxcpath = containers_dir(cfg.root)
    sdir = state_dir(cfg.root, name)
    owner = owner_of(rec)
    if lxc.state(name, lxcpath) == "RUNNING":
        pid = lxc.init_pid(name, lxcpath)
        if pid is not None:
            try:
                fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                fd = -1  # it has just stopped
            if fd >= 0:
                try:
                    # the pid was the container's when we opened it, not a recycled one
                    if lxc.init_pid(name, lxcpath) == pid:
                        return fn(_Root(fd, owner, {}, _api_mounts(fd, pid)))
                finally:
                    os.close(fd)
    # stopped: no start may mount or run it meanwhile
    with flocked(sdir / "start.lock"):
        if supervisor_pid(sdir) or lxc.state(name, lxcpath) != "STOPPED":
            raise BackendError(f"container {name} is starting or restarting; try again")
        if not rec.mount:
            fd = os.open(rec.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                root = _Root(fd, owner, {})
                root.targets = _mount_targets(fd, rec)
                return fn(root)
            finally:
                os.close(fd)
        return _in_private_mount(rec, owner, fn)


def _in_private_mount(
    rec: ContainerRecord, owner: int, fn: Callable[[_Root], CopyResult]
) -> CopyResult:
    """Mount the overlay rootfs in a child's own mount namespace and run ``fn`` there."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(rfd)
        doc: dict[str, Any]
        try:
            if _libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
            # nothing mounted here may propagate back to the host
            subprocess.run(["mount", "--make-rprivate", "/"], check=True, capture_output=True)
            try:
                mountsys.replay(rec.mount)
            except StorageError as e:
                raise BackendError(f"cannot mount the rootfs of {rec.name}: {e}") from None
            fd = os.open(rec.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            root = _Root(fd, owner, {})
            root.targets = _mount_targets(fd, rec)
            doc = {"ok": fn(root).to_json()}
        except BackendError as e:
            doc = {"error": str(e)}
        except OSError as e:
            doc = {"oserror": [e.errno, e.strerror, e.filename]}
        except BaseException as e:  # the parent reports it; a child must not unwind
            doc = {"error": f"{type(e).__name__}: {e}"}
        os.write(wfd, json.dumps(doc).encode())
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    try:
        doc = json.loads(data)
    except ValueError:
        raise BackendError(f"copying in container {rec.name} failed (the helper died)") from None
    if "ok" in doc:
        return CopyResult(**doc["ok"])
    if "oserror" in doc:
        raise OSError(*doc["oserror"])
    raise BackendError(doc["error"])


# -- the two directions --------------------------------------------------------------
def copy_out(
    cfg: Config, name: str, ct_path: str, host_path: str, *, follow: bool = False
) -> CopyResult:
    """``lxcri cp NAME:CT_PATH HOST_PATH`` (docker's rules for an existing destination)."""
    if not ct_path.startswith("/"):
        ct_path = "/" + ct_path
    host = host_path

    def work(root: _Root) -> CopyResult:
        res = CopyResult()
        side = _Side(owner=None, mode_mask=0o777, skip=root.api)
        parent, base = _split(ct_path)
        if follow or not base:  # the path itself, its last link followed (inside the root)
            try:
                fd = open_in_root(root.fd, ct_path, os.O_PATH)
            except OSError as e:
                raise _ct_error(e, ct_path, name) from None
            try:
                st = os.fstat(fd)
                if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                    res.skipped.append(ct_path)
                    return res
                if stat.S_ISDIR(st.st_mode):
                    _refuse_volume(root.fd, fd, root.targets, ct_path)
                # reopening our own O_PATH fd readable: the same inode, no name lookup
                rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            finally:
                os.close(fd)
            try:
                _copy_resolved(rfd, host, _last(ct_path), side, res, ct_path)
            finally:
                os.close(rfd)
            return res
        try:
            src_parent = open_in_root(root.fd, parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise _ct_error(e, parent, name) from None
        try:
            _refuse_volume(root.fd, src_parent, root.targets, ct_path)
            try:
                st = os.stat(base, dir_fd=src_parent, follow_symlinks=False)
            except OSError as e:
                raise _ct_error(e, ct_path, name) from None
            if stat.S_ISDIR(st.st_mode):
                with _opened_dir(src_parent, base) as sub:
                    _refuse_volume(root.fd, sub, root.targets, ct_path)
            dst_dir, dst_name = _host_target(host, base, stat.S_ISDIR(st.st_mode))
            try:
                _copy_entry(src_parent, base, dst_dir, dst_name, side, res, ct_path)
            finally:
                os.close(dst_dir)
        finally:
            os.close(src_parent)
        return res

    return _run_in_root(cfg, name, work)


@contextlib.contextmanager
def _opened_dir(dir_fd: int, name: str) -> Iterator[int]:
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _last(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return parts[-1] if parts else "rootfs"


def _copy_resolved(fd: int, host: str, name: str, side: _Side, res: CopyResult, shown: str) -> None:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        dst_dir, dst_name = _host_target(host, name, True)
        try:
            _copy_dir(fd, st, dst_dir, dst_name, side, res, shown)
        finally:
            os.close(dst_dir)
    elif stat.S_ISREG(st.st_mode):
        dst_dir, dst_name = _host_target(host, name, False)
        try:
            _write_file(fd, st, dst_dir, dst_name, side, res)
        finally:
            os.close(dst_dir)
    else:
        res.skipped.append(shown)


def _host_target(raw: str, name: str, is_dir: bool) -> tuple[int, str]:
    """(parent dir fd, name) the copy writes on the host, by docker's rules."""
    host = Path(raw)  # drops a trailing "/", which says "an existing directory"
    if host.is_dir():
        return os.open(host, os.O_RDONLY | os.O_DIRECTORY), name
    if raw.endswith(("/", "/.")):
        raise BackendError(f"destination directory {host} does not exist")
    if host.exists() and is_dir:
        raise BackendError(f"cannot copy a directory onto the file {host}")
    try:
        return os.open(host.parent, os.O_RDONLY | os.O_DIRECTORY), host.name
    except FileNotFoundError:
        raise BackendError(f"destination directory {host.parent} does not exist") from None


def copy_in(
    cfg: Config, name: str, host_path: str, ct_path: str, *, follow: bool = False
) -> CopyResult:
    """``lxcri cp HOST_PATH NAME:CT_PATH``: owned by the container's root."""
    if not ct_path.startswith("/"):
        ct_path = "/" + ct_path
    src = Path(host_path)
    try:
        src_st = src.stat() if follow else src.lstat()
    except FileNotFoundError:
        raise BackendError(f"{host_path}: no such file or directory") from None
    src_name = _last(str(src.resolve()) if host_path in (".", "..") else host_path)

    def work(root: _Root) -> CopyResult:
        res = CopyResult()
        side = _Side(owner=root.owner, mode_mask=0o7777)
        dst_dir, dst_name = _ct_target(root, ct_path, src_name, name)
        try:
            _refuse_volume(root.fd, dst_dir, root.targets, ct_path)
            if dst_name and stat.S_ISDIR(src_st.st_mode):
                with contextlib.suppress(FileNotFoundError):
                    cur = os.stat(dst_name, dir_fd=dst_dir, follow_symlinks=False)
                    if not stat.S_ISDIR(cur.st_mode):
                        raise BackendError(
                            f"cannot copy a directory onto {ct_path} in container {name}: "
                            "it is not a directory"
                        )
            parent, entry = str(src.parent), src.name
            if follow and stat.S_ISLNK(src.lstat().st_mode):
                resolved = src.resolve()
                parent, entry = str(resolved.parent), resolved.name
            if not entry:  # "/" or ".": copy the directory itself
                parent, entry = str(src.resolve().parent), src.resolve().name
            sfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                _copy_entry(sfd, entry, dst_dir, dst_name, side, res, host_path)
            finally:
                os.close(sfd)
        except OSError as e:
            raise _ct_error(e, ct_path, name) from None
        finally:
            os.close(dst_dir)
        return res

    return _run_in_root(cfg, name, work)


def _ct_target(root: _Root, ct_path: str, src_name: str, name: str) -> tuple[int, str]:
    """(parent dir fd in the container, name) the copy writes, by docker's rules."""
    try:  # an existing directory (a link to one is resolved inside the root): copy into it
        fd = open_in_root(root.fd, ct_path, os.O_RDONLY | os.O_DIRECTORY)
        return fd, src_name
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise _ct_error(e, ct_path, name) from None
    if ct_path.endswith("/"):
        raise BackendError(f"{ct_path} in container {name}: no such directory")
    parent, base = _split(ct_path)
    try:
        return open_in_root(root.fd, parent, os.O_RDONLY | os.O_DIRECTORY), base
    except OSError as e:
        raise _ct_error(e, parent, name) from None


def parse_location(arg: str) -> tuple[str | None, str]:
    """``NAME:PATH`` -> (NAME, PATH); a host path (``/x``, ``./a:b``, ``file``) -> (None, arg)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    if "/" in name or not name:
        return None, arg
    return name, path or "/"
