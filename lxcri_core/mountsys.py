"""mount(2), umount2(2) and overlay mounts through libc, without mount(8).

Why not mount(8): util-linux 2.39+ (Debian trixie, Proxmox VE 9) mounts
through the new mount API, where the kernel takes at most 255 bytes per
option value, so ``lowerdir=a:b:...`` of more than a dozen layers fails with
"wrong fs type, bad option". An overlay here is mounted with one
``lowerdir+`` per layer (kernel 6.8+), or with mount(2) and a page of
options where the kernel lacks ``lowerdir+``. Calling libc also saves a
process per mount in the LXC hooks, which import this module: it must stay
light (ctypes, os, errno only).
"""

from __future__ import annotations

import ctypes
import errno
import os

from lxcri_core.errors import StorageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)

if TYPE_CHECKING:  # not imported at run time: the hooks pay for every import
    import threading
    from collections.abc import Sequence
    from pathlib import Path

MS_RDONLY = 0x1
MS_BIND = 0x1000
MNT_DETACH = 0x2

# The new mount API (Linux 5.2); the numbers are the same on every
# architecture that has these calls (the unified syscall table).
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSOPEN_CLOEXEC = 0x1
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_FSMOUNT_CLOEXEC = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100
#: the kernel's limit on one fsconfig string value (strndup_user(..., 256))
_FSCONFIG_VALUE_MAX = 255

#: syscall(2) reads every argument as a long: pass them so, never as C ints
_L = ctypes.c_long
_libc: ctypes.CDLL | None = None
# mount(2) with relative lower dirs needs the process's cwd: one at a time
_cwd_lock: threading.Lock | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _fail(what: str, err: int, detail: str = "") -> StorageError:
    msg = f"{what}: {os.strerror(err)}"
    return StorageError(f"{msg} ({detail})" if detail else msg)


def mount(
    source: str, target: str | Path, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    """mount(2); a failure is a StorageError with the errno's text."""
    rc = _lib().mount(
        os.fsencode(source),
        os.fsencode(str(target)),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        os.fsencode(data) if data is not None else None,
    )
    if rc != 0:
        raise _fail(f"cannot mount {source} on {target}", ctypes.get_errno())


def bind(source: str | Path, target: str | Path) -> None:
    """``mount --bind source target`` (not recursive)."""
    mount(str(source), target, None, MS_BIND)


def umount(target: str | Path, flags: int = 0) -> None:
    """umount2(2); a failure is a StorageError with the errno's text."""
    if _lib().umount2(os.fsencode(str(target)), ctypes.c_int(flags)) != 0:
        raise _fail(f"cannot unmount {target}", ctypes.get_errno())


def overlay(
    lowerdirs: Sequence[str | Path],
    upperdir: str | Path,
    workdir: str | Path,
    target: str | Path,
) -> None:
    """Mount an overlay of ``lowerdirs`` (top layer first) at ``target``.

    One ``lowerdir+`` per layer through the new mount API where the kernel
    has it (6.8+): no limit on the number of layers but overlay's own (500).
    Elsewhere mount(2) with all options in one page.
    """
    lowers = [str(p) for p in lowerdirs]
    if not lowers:
        raise StorageError(f"overlay at {target}: no lower directories")
    if max(len(os.fsencode(p)) for p in [*lowers, str(upperdir), str(workdir)]) <= (
        _FSCONFIG_VALUE_MAX
    ) and _overlay_fsconfig(lowers, str(upperdir), str(workdir), str(target)):
        return
    _overlay_mount2(lowers, str(upperdir), str(workdir), str(target))


def _fs_messages(fd: int) -> str:
    """The messages the kernel left in a filesystem context (why fsconfig failed)."""
    out = []
    for _ in range(16):
        try:
            line = os.read(fd, 1024).decode(errors="replace").strip()
        except OSError:
            break
        if line:  # "e overlayfs: failed to resolve 'x': -2"
            out.append(line[2:] if line[1:2] == " " else line)
    return "; ".join(out)


def _overlay_fsconfig(lowers: list[str], upper: str, work: str, target: str) -> bool:
    """Mount through fsopen/fsconfig; False when this kernel cannot (no API, no lowerdir+)."""
    libc = _lib()
    fd = libc.syscall(_L(_SYS_FSOPEN), b"overlay", _L(_FSOPEN_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EPERM):  # no new mount API, or a seccomp filter
            return False
        raise _fail(f"cannot mount an overlay on {target}", err)
    try:

        def put(key: str, value: str | None, cmd: int = _FSCONFIG_SET_STRING) -> int:
            val = os.fsencode(value) if value is not None else None
            name = key.encode() if key else None
            if libc.syscall(_L(_SYS_FSCONFIG), _L(fd), _L(cmd), name, val, _L(0)) == 0:
                return 0
            return ctypes.get_errno()

        def check(err: int, what: str) -> None:
            if err:
                raise _fail(f"cannot mount an overlay on {target}: {what}", err, _fs_messages(fd))

        check(put("source", "overlay"), "source")
        for i, lower in enumerate(lowers):
            err = put("lowerdir+", lower)
            if err:
                msgs = _fs_messages(fd)
                if err == errno.EINVAL and i == 0 and "lowerdir+" in msgs:
                    return False  # "Unknown parameter 'lowerdir+'": before Linux 6.8
                raise _fail(
                    f"cannot mount an overlay on {target}: lower directory {lower}", err, msgs
                )
        check(put("upperdir", upper), f"upper directory {upper}")
        check(put("workdir", work), f"work directory {work}")
        check(put("", None, _FSCONFIG_CMD_CREATE), "create")
        mfd = libc.syscall(_L(_SYS_FSMOUNT), _L(fd), _L(_FSMOUNT_CLOEXEC), _L(0))
        if mfd < 0:
            raise _fail(f"cannot mount an overlay on {target}", ctypes.get_errno())
        try:
            rc = libc.syscall(
                _L(_SYS_MOVE_MOUNT),
                _L(mfd),
                b"",
                _L(_AT_FDCWD),
                os.fsencode(target),
                _L(_MOVE_MOUNT_F_EMPTY_PATH),
            )
            if rc != 0:
                raise _fail(f"cannot mount an overlay on {target}", ctypes.get_errno())
        finally:
            os.close(mfd)
    finally:
        os.close(fd)
    return True


def _overlay_mount2(lowers: list[str], upper: str, work: str, target: str) -> None:
    """mount(2): the options must fit in a page; lower dirs relative to their parent if needed."""
    for p in [*lowers, upper, work]:
        if any(c in p for c in ",:\\"):  # they would split or escape the option string
            raise StorageError(f"cannot mount an overlay from {p!r}: ',', ':' or '\\' in a path")
    page = os.sysconf("SC_PAGESIZE")
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    if len(os.fsencode(opts)) < page:
        mount("overlay", target, "overlay", 0, opts)
        return
    base = os.path.commonpath(lowers) if len(lowers) > 1 else os.path.dirname(lowers[0])
    rel = ":".join(os.path.relpath(p, base) for p in lowers)
    opts = f"lowerdir={rel},upperdir={upper},workdir={work}"
    if len(os.fsencode(opts)) >= page or not (
        os.path.isabs(upper) and os.path.isabs(work) and os.path.isabs(target)
    ):
        raise StorageError(
            f"overlay options for {target} are {len(opts)} bytes, more than a page, and this "
            "kernel has no lowerdir+ (Linux 6.8); use the dir or zfs backend for this image"
        )
    global _cwd_lock
    if _cwd_lock is None:
        import threading

        _cwd_lock = threading.Lock()
    with _cwd_lock:
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(base)
            mount("overlay", target, "overlay", 0, opts)
        finally:
            os.fchdir(here)
            os.close(here)


#: First word of a recorded overlay mount (``ContainerRecord.mount``); records
#: of earlier versions hold a mount(8) command line instead.
OVERLAY_RECORD = "overlay"
#: First word of a recorded bind mount (a dir or zfs rootfs mounted into the
#: container's state dir, so the layer store stays private).
BIND_RECORD = "bind"
RECORDS = (OVERLAY_RECORD, BIND_RECORD)


def overlay_record(
    lowerdirs: Sequence[str | Path], upperdir: str | Path, workdir: str | Path, target: str | Path
) -> tuple[str, ...]:
    """An overlay mount as the pre-start hook replays it: see ``mount_recorded``.

    Absolute paths: the hook runs in LXC's working directory, not the caller's.
    """
    paths = [target, upperdir, workdir, *lowerdirs]
    return (OVERLAY_RECORD, *(os.path.abspath(p) for p in paths))


def bind_record(source: str | Path, target: str | Path) -> tuple[str, ...]:
    """A bind mount as the pre-start hook replays it: see ``mount_recorded``."""
    return (BIND_RECORD, os.path.abspath(target), os.path.abspath(source))


def mount_recorded(record: Sequence[str]) -> None:
    """Mount what ``overlay_record`` or ``bind_record`` recorded."""
    if len(record) == 3 and record[0] == BIND_RECORD:
        bind(record[2], record[1])
        return
    if len(record) < 5 or record[0] != OVERLAY_RECORD:
        raise StorageError(f"not an overlay or bind mount record: {list(record)!r}")
    _, target, upper, work, *lowers = record
    overlay(lowers, upper, work, target)


def replay(record: Sequence[str]) -> None:
    """Mount what a container record holds: a record of ``overlay_record`` or
    ``bind_record``, or the mount(8) argv (working directory last) of an earlier lxcri."""
    if record and record[0] in RECORDS:
        mount_recorded(record)
        return
    import subprocess

    *argv, cwd = record
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise StorageError(f"cannot mount ({' '.join(argv)}): {p.stderr.strip()}")
