"""``lxcri top``: the processes of a running container, read from the host's /proc.

A process belongs to the container when its pid namespace is the one of the
container's init (no ``exec`` into the container, which a process-less or
shell-less image could not serve). PIDs are the host's, as ``docker top``
shows them; ``CPID`` is the pid inside the container (the last ``NSpid``)
and ``UID`` the user id as the container sees it (its ``uid_map`` applied),
so an unprivileged container's root is 0, not 100000.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from lxcri_core.errors import BackendError


@dataclass(frozen=True)
class Process:
    pid: int  # on the host
    ppid: int  # on the host
    cpid: int  # inside the container
    uid: int  # as the container sees it
    host_uid: int
    cpu_seconds: float
    cmd: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def parse_uid_map(text: str) -> list[tuple[int, int, int]]:
    """``/proc/PID/uid_map``: (inside, outside, count) ranges."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            out.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return out


def inside_uid(host_uid: int, ranges: list[tuple[int, int, int]]) -> int:
    """The container's view of a host uid; 65534 (nobody) when the map has none."""
    for inside, outside, count in ranges:
        if outside <= host_uid < outside + count:
            return inside + host_uid - outside
    return 65534


def parse_stat_cpu(text: str, ticks: int) -> float:
    """utime+stime in seconds from ``/proc/PID/stat`` (comm may hold spaces and parens)."""
    rest = text.rsplit(")", 1)[-1].split()
    # after the comm: state(0) ppid(1) ... utime(11) stime(12)
    if len(rest) < 13:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / ticks


def parse_cmdline(data: bytes, comm: str) -> str:
    args = [a.decode(errors="replace") for a in data.split(b"\0") if a]
    return " ".join(args) if args else f"[{comm}]"


def _ns(pid: int | str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def processes(init_pid: int) -> list[Process]:
    """Every process in the pid namespace of ``init_pid`` (the container's init)."""
    ns = _ns(init_pid)
    if ns is None:
        raise BackendError("the container stopped while its processes were read")
    try:
        with open(f"/proc/{init_pid}/uid_map") as f:
            ranges = parse_uid_map(f.read())
    except OSError:
        ranges = []
    ticks = os.sysconf("SC_CLK_TCK")
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or _ns(entry) != ns:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):  # it exited meanwhile
            with open(f"/proc/{entry}/status") as f:
                st = parse_status(f.read())
            with open(f"/proc/{entry}/stat") as f:
                cpu = parse_stat_cpu(f.read(), ticks)
            with open(f"/proc/{entry}/cmdline", "rb") as fb:
                cmd = parse_cmdline(fb.read(), st.get("Name", "?"))
            host_uid = int(st["Uid"].split()[0])
            out.append(
                Process(
                    pid=int(entry),
                    ppid=int(st["PPid"]),
                    cpid=int(st.get("NSpid", entry).split()[-1]),
                    uid=inside_uid(host_uid, ranges) if ranges else host_uid,
                    host_uid=host_uid,
                    cpu_seconds=cpu,
                    cmd=cmd,
                )
            )
    return sorted(out, key=lambda p: p.cpid)
