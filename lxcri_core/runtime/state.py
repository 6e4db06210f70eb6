"""The runtime's state store: one small file per container, read by every command.

``ROOT/ID/`` is both this runtime's state directory and LXC's container
directory (the lxcpath is ROOT). ``ROOT/ID/state`` holds two lines::

    STATUS PID STARTTIME
    "bundle": "...", "rootfs": "...", "created": "...", "owner": "", "annotations": {...}

The second line is a fragment of the ``state`` JSON, encoded once by
``create``: ``state`` runs on every containerd poll, and this module must
stay cheap to import (no json, re or pathlib: ``python3 -X importtime``;
the goal is ``state`` within twice a bare interpreter's start). The status
recorded is what the runtime last did (``created``, ``running``,
``paused``, ``stopped``); the status reported also looks at the process:
the pid (with its start time, so a reused pid is not taken for ours)
gone or a zombie means ``stopped``.
"""

from __future__ import annotations

import os

from lxcri_core.errors import OciRuntimeError

#: The runtime-spec version ``state`` reports.
OCI_VERSION = "1.2.0"
DEFAULT_ROOT = "/run/lxcri-runtime"
STATE_FILE = "state"
STATUSES = ("creating", "created", "running", "paused", "stopped")


#: What a container id may hold (runc's ``^[\w+-\.]+$``, ASCII): it names a directory.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def container_dir(root: str, cid: str) -> str:
    if not cid or cid in (".", "..") or len(cid) > 1024 or not _ID_CHARS.issuperset(cid):
        raise OciRuntimeError(f"invalid id format: {cid!r}")
    return f"{root}/{cid}"


def proc_start(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of ``pid``, None when there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def alive(pid: int, start: int) -> bool:
    """Whether ``pid`` is still the process recorded (same start time), and not a zombie."""
    if pid <= 0:
        return False
    st = proc_start(pid)
    return st is not None and st[1] == start and st[0] not in ("Z", "X", "x")


class State:
    """A container's state file, parsed."""

    __slots__ = ("cdir", "cid", "fragment", "pid", "recorded", "start")

    def __init__(
        self, cid: str, cdir: str, recorded: str, pid: int, start: int, fragment: str
    ) -> None:
        self.cid, self.cdir, self.recorded = cid, cdir, recorded
        self.pid, self.start, self.fragment = pid, start, fragment

    @property
    def status(self) -> str:
        """The status as ``state`` reports it (the process decides stopped)."""
        if self.recorded in ("stopped", "creating"):
            return self.recorded
        return self.recorded if alive(self.pid, self.start) else "stopped"

    def to_json(self) -> str:
        status = self.status
        pid = self.pid if status != "stopped" else 0
        return (
            f'{{"ociVersion": "{OCI_VERSION}", "id": "{self.cid}", "pid": {pid}, '
            f'"status": "{status}", {self.fragment}}}'
        )

    def save(self, recorded: str | None = None) -> None:
        """Write the file again (atomically) with a new recorded status."""
        if recorded is not None:
            self.recorded = recorded
        write(self.cdir, self.recorded, self.pid, self.start, self.fragment)


def write(cdir: str, recorded: str, pid: int, start: int, fragment: str) -> None:
    if recorded not in STATUSES or "\n" in fragment:
        raise OciRuntimeError(f"internal: bad state {recorded!r}")
    tmp = f"{cdir}/.{STATE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{recorded} {pid} {start}\n{fragment}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, f"{cdir}/{STATE_FILE}")


def load(root: str, cid: str) -> State:
    """The container's state; OciRuntimeError("container does not exist") as runc says it."""
    cdir = container_dir(root, cid)
    try:
        with open(f"{cdir}/{STATE_FILE}", "rb") as f:
            head, _, fragment = f.read().decode().partition("\n")
    except (FileNotFoundError, NotADirectoryError):
        raise OciRuntimeError("container does not exist") from None
    except OSError as e:
        raise OciRuntimeError(f"cannot read the state of {cid}: {e.strerror}") from None
    parts = head.split()
    if len(parts) != 3 or parts[0] not in STATUSES:
        raise OciRuntimeError(f"the state file of {cid} is damaged; delete --force it")
    return State(cid, cdir, parts[0], int(parts[1]), int(parts[2]), fragment.rstrip("\n"))


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(f"{root}/{n}/{STATE_FILE}"))
