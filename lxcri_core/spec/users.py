"""Resolve ``--user NAME|UID[:GROUP|GID]`` against a rootfs's /etc/passwd and /etc/group.

The parsers are pure (text in, entries out); ``read_rootfs_file`` reads a file
inside a rootfs without following symlinks out of it, because an image's
/etc/passwd may be a symlink to anywhere on the host.

Resolution follows docker (runc's ``GetExecUser``):

- no user -> uid 0, gid 0 (from passwd's ``root`` entry when there is one);
- a name must exist in passwd; a number need not (gid then defaults to 0);
- an explicit group (name or number) sets the primary gid; a name must exist
  in /etc/group;
- without an explicit group, the groups listing the user name as a member
  become the supplementary gids;
- home is passwd's home directory, ``/`` when unknown.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lxcri_core.errors import SpecError
from lxcri_core.spec.model import User


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str = "/"
    shell: str = ""


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = ()


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of a passwd file; malformed lines are skipped (as libc does)."""
    out: list[PasswdEntry] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 4 or not f[0]:
            continue
        try:
            uid, gid = int(f[2]), int(f[3])
        except ValueError:
            continue
        home = f[5] if len(f) > 5 and f[5] else "/"
        shell = f[6] if len(f) > 6 else ""
        out.append(PasswdEntry(f[0], uid, gid, home, shell))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of a group file; malformed lines are skipped."""
    out: list[GroupEntry] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 3 or not f[0]:
            continue
        try:
            gid = int(f[2])
        except ValueError:
            continue
        members = tuple(m.strip() for m in f[3].split(",") if m.strip()) if len(f) > 3 else ()
        out.append(GroupEntry(f[0], gid, members))
    return out


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(
    user: str,
    group: str = "",
    passwd_text: str | None = None,
    group_text: str | None = None,
    group_add: tuple[str, ...] = (),
) -> User:
    """Resolve a user and optional group to numbers (see the module docstring for the rules).

    ``passwd_text``/``group_text`` None means the file does not exist; then
    only numeric users and groups can be resolved. ``group_add`` are extra
    supplementary groups (``--group-add``), names or numbers.
    """
    passwd = parse_passwd(passwd_text or "")
    groups = parse_group(group_text or "")
    uid_num = _number(user) if user else 0
    entry: PasswdEntry | None = None
    for e in passwd:
        if (uid_num is None and e.name == user) or (uid_num is not None and e.uid == uid_num):
            entry = e
            break
    if entry is None and uid_num is None:
        where = "the image has no /etc/passwd" if passwd_text is None else "not in /etc/passwd"
        raise SpecError(f"user {user!r} cannot be resolved: {where}; use a numeric UID[:GID]")
    uid = entry.uid if entry else (uid_num or 0)
    gid = entry.gid if entry else 0
    name = entry.name if entry else ""
    home = entry.home if entry else "/"
    sgids: list[int] = []
    if group:
        gid = _resolve_group(group, groups, group_text is None, "user")
    elif name:
        sgids = [g.gid for g in groups if name in g.members]
    added: list[int] = []
    for extra in group_add:
        g = _resolve_group(extra, groups, group_text is None, "--group-add")
        added.append(g)
        if g not in sgids:
            sgids.append(g)
    return User(uid, gid, tuple(sgids), name, home, group_add_gids=tuple(added))


def _resolve_group(group: str, groups: list[GroupEntry], missing: bool, what: str) -> int:
    num = _number(group)
    for g in groups:
        if (num is None and g.name == group) or (num is not None and g.gid == num):
            return g.gid
    if num is not None:
        return num
    where = "the image has no /etc/group" if missing else "not in /etc/group"
    raise SpecError(f"{what} group {group!r} cannot be resolved: {where}; use a numeric GID")


def read_rootfs_file(rootfs: Path, relpath: str, limit: int = 4 << 20) -> str | None:
    """Read ``rootfs/relpath`` without following any symlink; None when it does not exist.

    Each path component is opened with ``O_NOFOLLOW`` relative to its parent,
    so a hostile image cannot make us read a host file. A symlink anywhere on
    the way counts as "does not exist" (docker would resolve it inside the
    rootfs; images with a symlinked /etc/passwd are rare enough).
    """
    parts = [p for p in relpath.split("/") if p and p != "."]
    if ".." in parts:
        raise SpecError(f"path {relpath!r} escapes the rootfs")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(rootfs, flags | os.O_DIRECTORY)
    except OSError as e:
        raise SpecError(f"cannot open rootfs {rootfs}: {e.strerror}") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                # O_NONBLOCK: a FIFO planted at /etc/passwd must not hang us
                extra = os.O_NONBLOCK if last else os.O_DIRECTORY
                nfd = os.open(part, flags | extra, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    return None
                raise SpecError(f"cannot read {relpath} in {rootfs}: {e.strerror}") from None
            os.close(fd)
            fd = nfd
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read(limit + 1)
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    if len(data) > limit:
        raise SpecError(f"{relpath} in {rootfs} is larger than {limit} bytes")
    return data.decode("utf-8", errors="replace")
