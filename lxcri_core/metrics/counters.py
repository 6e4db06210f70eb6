"""Counters that short-lived processes leave for the exporter: pulls (the CLI) and hook runs.

Pulls and LXC hooks run in processes of their own, long gone when Prometheus
scrapes, so each adds its observation to ``ROOT/metrics/counters.json``:
per series a count, a failure count, a sum and histogram buckets. A writer
takes ``ROOT/metrics/.lock`` (flock), reads the file, adds, writes a
temporary file and renames it over; readers (the exporter) read without a
lock, and a rename means they see one whole version or the next.

Threats, from an unprivileged local user: forging metrics, making root
follow a symlink, or stalling a container's start by holding the lock. So
the directory is created 0700 and is used only when it is a real directory
(opened ``O_NOFOLLOW``) owned by the process's own user and writable by no
one else; every file in it is opened relative to it with ``O_NOFOLLOW``; the
lock is waited for at most ``LOCK_WAIT`` seconds, then the observation is
dropped. The reader accepts a directory and file owned by root or by itself,
writable by no one else. Recording never raises: a metric is not worth a
failed pull or a container that does not start.

This module is imported by every hook run: standard library only, no typing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from typing import Any

DIRNAME = "metrics"
FILENAME = "counters.json"
LOCKNAME = ".lock"
_TMPNAME = ".counters.json.tmp"
#: Seconds a writer waits for another writer's lock before dropping its observation.
LOCK_WAIT = 1.0
#: At most this many series per kind; more fold into ``other`` (registries are
#: names from the command line: never an unbounded label set).
MAX_SERIES = 64
OTHER = "other"

#: Histogram upper bounds (seconds) per kind; the last bucket is +Inf.
BUCKETS: dict[str, tuple[float, ...]] = {
    "pull": (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    "hook": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
}


def metrics_dir(root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), DIRNAME)


def _safe_dir(st: os.stat_result, owners: tuple[int, ...]) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid in owners and not st.st_mode & 0o022


def _open_dir(root: str | os.PathLike[str], create: bool, owners: tuple[int, ...]) -> int | None:
    """A descriptor of ``ROOT/metrics`` when it is safe to use, else None."""
    path = metrics_dir(root)
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not _safe_dir(os.fstat(fd), owners):
        os.close(fd)
        return None
    return fd


def _lock(dfd: int) -> int | None:
    import fcntl

    try:
        fd = os.open(
            LOCKNAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd
        )
    except OSError:
        return None
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.005)
        except OSError:
            os.close(fd)
            return None


def _read(dfd: int, owners: tuple[int, ...]) -> dict[str, Any]:
    try:
        fd = os.open(FILENAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if st.st_uid not in owners or st.st_mode & 0o022 or st.st_size > 1 << 20:
            return {}
        with os.fdopen(os.dup(fd), "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return doc if isinstance(doc, dict) else {}


def _new_series(kind: str) -> dict[str, Any]:
    return {"count": 0, "failed": 0, "sum": 0.0, "buckets": [0] * (len(BUCKETS[kind]) + 1)}


def _add(doc: dict[str, Any], kind: str, key: str, seconds: float, ok: bool) -> None:
    series = doc.setdefault(kind, {})
    if not isinstance(series, dict):
        series = doc[kind] = {}
    if key not in series and len(series) >= MAX_SERIES:
        key = OTHER
    s = series.get(key)
    if not _valid_series(kind, s):
        s = series[key] = _new_series(kind)
    assert isinstance(s, dict)
    s["count"] += 1
    s["failed"] += 0 if ok else 1
    s["sum"] += seconds
    bounds = BUCKETS[kind]
    i = next((n for n, b in enumerate(bounds) if seconds <= b), len(bounds))
    s["buckets"][i] += 1


def record(root: str | os.PathLike[str], kind: str, key: str, seconds: float, ok: bool) -> bool:
    """Add one observation of ``kind`` (``pull``: key a registry; ``hook``: key a hook
    type) lasting ``seconds``; False when it could not be recorded (never raises)."""
    if kind not in BUCKETS:
        raise ValueError(f"unknown counter kind {kind!r}")
    me = (os.geteuid(),)
    dfd = _open_dir(root, create=True, owners=me)
    if dfd is None:
        return False
    try:
        lfd = _lock(dfd)
        if lfd is None:
            return False
        try:
            doc = _read(dfd, me)
            _add(doc, kind, key or OTHER, max(0.0, float(seconds)), ok)
            data = json.dumps(doc, separators=(",", ":")).encode()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_TMPNAME, dir_fd=dfd)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(_TMPNAME, flags, 0o644, dir_fd=dfd)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(_TMPNAME, FILENAME, src_dir_fd=dfd, dst_dir_fd=dfd)
            return True
        finally:
            os.close(lfd)  # releases the lock
    except OSError:
        return False
    finally:
        os.close(dfd)


def _valid_series(kind: str, s: Any) -> bool:
    if not isinstance(s, dict):
        return False
    b = s.get("buckets")
    nums = (s.get("count"), s.get("failed"), s.get("sum"))
    return (
        isinstance(b, list)
        and len(b) == len(BUCKETS[kind]) + 1
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in b)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in nums)
    )


def read(root: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every series of every kind (``{kind: {key: series}}``); what fails the ownership
    checks or does not parse is left out (an empty mapping)."""
    owners = tuple({0, os.geteuid()})
    dfd = _open_dir(root, create=False, owners=owners)
    if dfd is None:
        return {}
    try:
        doc = _read(dfd, owners)
    finally:
        os.close(dfd)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in BUCKETS:
        series = doc.get(kind)
        if isinstance(series, dict):
            out[kind] = {
                str(k): s for k, s in series.items() if _valid_series(kind, s) and len(k) <= 255
            }
    return out


def root_of_state_dir(state_dir: str) -> str:
    """The state root of a container's state directory (``ROOT/containers/NAME`` for
    plain LXC, ``ROOT/pve/VMID`` for the Proxmox hookscript)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(state_dir)))
