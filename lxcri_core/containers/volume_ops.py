"""Listing, inspecting, removing and pruning the volumes under ``$LXCRI_ROOT/volumes``.

A volume's users are the containers whose spec mounts it: a named volume
by name, an anonymous one (``anon-<container id>-<n>``) by its container's
id. An anonymous volume whose container is gone (a crash mid-remove) is
dangling, as is a named volume no container mounts.

A create resolves and prepares its volumes long before its record (the
marker that makes it a user) is written, so ``create`` holds
``volumes_locked(shared=True)`` over those steps and ``rm``/``prune`` take it
exclusively: a volume is never removed between a create's check and its
record.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_core.containers.record import ContainerRecord, list_records
from lxcri_core.containers.volumes import volumes_dir
from lxcri_core.errors import BackendError

#: The names ``-v NAME:/path`` accepts; ``anon-...`` are lxcri's own.
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
ANON = re.compile(r"anon-([0-9a-f]{64})-(\d+)")
LOCK_WAIT = 10.0


@dataclass(frozen=True)
class VolumeUser:
    container: str
    id: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class Volume:
    name: str
    path: str
    anonymous: bool
    created: str
    users: tuple[VolumeUser, ...]
    size: int | None = None  # bytes of its files; only inspect walks the tree

    @property
    def dangling(self) -> bool:
        return not self.users

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dangling"] = self.dangling
        return doc


@contextlib.contextmanager
def volumes_locked(root: Path, *, shared: bool, wait: float | None = None) -> Iterator[None]:
    """The volumes lock (see the module doc). ``wait``: give up after so many seconds."""
    path = volumes_dir(root) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if wait is None:
            fcntl.flock(fd, mode)
        else:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BackendError(
                            "a container is being created; try again when it is done"
                        ) from None
                    time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def check_volume_name(name: str) -> str:
    if not VOLUME_NAME.fullmatch(name) or name in (".", ".."):
        raise BackendError(
            f"invalid volume name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


def _all_records(root: Path) -> list[ContainerRecord]:
    """Every container's record and every kept generation's (``rollback`` brings back
    the volumes it used: they are in use)."""
    from lxcri_core.containers.generations import kept_records

    return list_records(root) + kept_records(root)


def _users(records: list[ContainerRecord]) -> dict[str, list[VolumeUser]]:
    """Volume name -> its users, from every container's spec."""
    out: dict[str, list[VolumeUser]] = {}
    for rec in records:
        n = 0
        for m in rec.spec.mounts:
            if m.kind == "volume":
                key = m.source
            elif m.kind == "anonymous" and m.target in rec.anon_volumes:  # since 0.3
                key = Path(rec.anon_volumes[m.target]).name
            elif m.kind == "anonymous":  # numbered in mount order, as prepare_volumes does
                key = f"anon-{rec.id}-{n}"
                n += 1
            else:
                continue
            out.setdefault(key, []).append(VolumeUser(rec.name, rec.id, m.target, m.read_only))
    return out


def _created(path: Path) -> str:
    try:
        st = os.lstat(path)
    except OSError:
        return ""
    return datetime.fromtimestamp(st.st_ctime, UTC).isoformat(timespec="seconds")


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (hard links once); no link is followed.

    Directories are opened relative to their parent's fd with O_NOFOLLOW: a
    running container swapping one for a link to a host directory mid-walk
    gets it skipped, not measured.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(path, flags)
    except OSError:
        return 0
    # depth first, one open fd per level: a wide tree does not exhaust the fd table
    stack: list[tuple[int, list[str]]] = [(top, _listdir(top))]
    while stack:
        fd, names = stack[-1]
        if not names:
            os.close(fd)
            stack.pop()
            continue
        name = names.pop()
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, flags, dir_fd=fd)
                stack.append((sub, _listdir(sub)))
            elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        except OSError:
            continue  # gone meanwhile, or a directory swapped for a link
    return total


def _listdir(fd: int) -> list[str]:
    try:
        return os.listdir(fd)
    except OSError:
        return []


def _names(root: Path) -> list[str]:
    base = volumes_dir(root)
    if not base.is_dir():
        return []
    # dot entries are lxcri's own (.lock, a half-seeded .NAME.tmp)
    return sorted(
        e.name
        for e in os.scandir(base)
        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    )


def _volume(root: Path, name: str, users: dict[str, list[VolumeUser]], size: bool) -> Volume:
    path = volumes_dir(root) / name
    return Volume(
        name=name,
        path=str(path),
        anonymous=bool(ANON.fullmatch(name)),
        created=_created(path),
        users=tuple(users.get(name, ())),
        size=tree_size(path) if size else None,
    )


def list_volumes(root: Path) -> list[Volume]:
    users = _users(_all_records(root))
    return [_volume(root, n, users, size=False) for n in _names(root)]


def inspect_volume(root: Path, name: str) -> Volume:
    if not os.path.isdir(volumes_dir(root) / check_volume_name(name)) or os.path.islink(
        volumes_dir(root) / name
    ):
        raise BackendError(f"no such volume: {name} (see `lxcri volume ls`)")
    return _volume(root, name, _users(_all_records(root)), size=True)


def _running(root: Path, container: str) -> bool:
    from lxcri_core.containers import lxc
    from lxcri_core.containers.record import containers_dir, state_dir
    from lxcri_core.containers.runstate import supervisor_pid

    if supervisor_pid(state_dir(root, container)):
        return True
    return lxc.state(container, containers_dir(root)) != "STOPPED"


def remove_volume(root: Path, name: str, *, force: bool = False) -> None:
    """Remove a volume no container uses; ``force``: also one only stopped containers use.

    A volume a running container has mounted is never removed: deleting
    files under a live application is not what anyone means by ``rm -f``.
    """
    check_volume_name(name)
    with volumes_locked(root, shared=False, wait=LOCK_WAIT):
        path = volumes_dir(root) / name
        if path.is_symlink() or not path.is_dir():
            raise BackendError(f"no such volume: {name} (see `lxcri volume ls`)")
        users = _users(_all_records(root)).get(name, [])
        names = sorted({u.container for u in users})
        if users and not force:
            raise BackendError(
                f"volume {name} is in use by container {', '.join(names)}; "
                "remove the container first, or use --force"
            )
        live = [c for c in names if _running(root, c)]
        if live:
            raise BackendError(
                f"volume {name} is mounted by running container {', '.join(live)}; stop it first"
            )
        _delete(path)


def _delete(path: Path) -> None:
    # renamed first: a crash mid-delete leaves a dot entry, not half a volume
    doomed = path.with_name(f".{path.name}.removing")
    shutil.rmtree(doomed, ignore_errors=True)
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def prune_volumes(root: Path) -> list[Volume]:
    """Remove every dangling volume (named or anonymous); return what was removed."""
    removed: list[Volume] = []
    with volumes_locked(root, shared=False, wait=LOCK_WAIT):
        users = _users(_all_records(root))
        for name in _names(root):
            if users.get(name):
                continue
            vol = _volume(root, name, users, size=True)
            _delete(Path(vol.path))
            removed.append(vol)
    return removed
