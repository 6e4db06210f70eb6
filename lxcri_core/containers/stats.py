"""``lxcri stats``: CPU, memory, pids, network and block I/O of running containers.

Read from the container's cgroups, found through its init's
``/proc/PID/cgroup`` and our mount table, so the same code reads cgroup v1
(each controller its own hierarchy, as on this host and PVE 7 with the
legacy layout) and v2 (one unified hierarchy, PVE 8/9): per value the v1
file is tried first, then the v2 one. Network counters come from the
container's own network namespace (``/proc/PID/net/dev``). Every parser is
a pure function of a file's text, tested from recorded files in
``tests/data/cgroup``.

CPU % is docker's: CPU time used between two samples over the wall time
between them (100 % = one core busy). Memory usage leaves out inactive
page cache, as docker does, since the kernel drops it first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxcri_core.errors import BackendError
from lxcri_core.fsutil import read_text

#: v1's "no limit" is LONG_MAX rounded down to a page; anything this large is no limit.
UNLIMITED = 1 << 62


@dataclass(frozen=True)
class Sample:
    """One reading of a container's counters."""

    time_ns: int
    cpu_ns: int | None
    memory: int | None
    memory_limit: int | None  # None: no limit of its own (the host's memory applies)
    pids: int | None
    pids_limit: int | None
    net_rx: int
    net_tx: int
    block_read: int | None
    block_write: int | None


@dataclass(frozen=True)
class Stats:
    name: str
    id: str
    cpu_percent: float | None
    memory: int | None
    memory_limit: int | None
    memory_percent: float | None
    pids: int | None
    pids_limit: int | None
    net_rx: int
    net_tx: int
    block_read: int | None
    block_write: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- pure parsers ---------------------------------------------------------------------
def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/PID/cgroup`` -> controller -> path; the v2 hierarchy is key ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in parts[1].split(",") if parts[1] else [""]:
            out[ctrl] = parts[2]
    return out


def parse_cgroup_mounts(mountinfo: str) -> dict[str, tuple[str, str]]:
    """Our mount table -> controller -> (mount point, root of the mount); v2 is ``""``."""
    out: dict[str, tuple[str, str]] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, point = fields[3], fields[4].replace("\\040", " ")
        if rfields[0] == "cgroup2":
            out.setdefault("", (point, root))
        elif rfields[0] == "cgroup":
            for opt in rfields[2].split(","):
                if opt in ("cpu", "cpuacct", "memory", "pids", "blkio") or opt.startswith("name="):
                    out.setdefault(opt, (point, root))
    return out


def cgroup_dir(controller: str, procs: dict[str, str], mounts: dict[str, tuple[str, str]]) -> str:
    """The directory of ``controller`` for a process, or '' if not mounted here."""
    if controller not in procs or controller not in mounts:
        return ""
    point, root = mounts[controller]
    path = procs[controller]
    if root != "/" and path.startswith(root):
        path = path[len(root) :]
    return point.rstrip("/") + "/" + path.lstrip("/")


def parse_int(text: str) -> int | None:
    """A counter or limit file: ``12345`` or ``max`` (None)."""
    text = text.strip()
    if text == "max" or not text.lstrip("-").isdigit():
        return None
    value = int(text)
    return None if value >= UNLIMITED else value


def parse_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_blkio_v1(text: str) -> tuple[int, int]:
    """``blkio.throttle.io_service_bytes``: (read, write) bytes over all devices."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                write += int(parts[2])
    return read, write


def parse_io_stat_v2(text: str) -> tuple[int, int]:
    """``io.stat``: (rbytes, wbytes) over all devices."""
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if value.isdigit():
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
    return read, write


def parse_net_dev(text: str) -> tuple[int, int]:
    """``/proc/PID/net/dev``: (received, sent) bytes over every interface but ``lo``."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        cols = rest.split()
        if name.strip() == "lo" or len(cols) < 9:
            continue
        rx += int(cols[0])
        tx += int(cols[8])
    return rx, tx


def cpu_percent(prev: Sample, cur: Sample) -> float | None:
    if prev.cpu_ns is None or cur.cpu_ns is None or cur.time_ns <= prev.time_ns:
        return None
    return max(0.0, (cur.cpu_ns - prev.cpu_ns) / (cur.time_ns - prev.time_ns) * 100)


def memory_used(usage: int | None, stat: dict[str, int]) -> int | None:
    """Usage without inactive page cache (docker's number)."""
    if usage is None:
        return None
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    return max(0, usage - inactive) if inactive < usage else usage


# -- reading ----------------------------------------------------------------------------
Reader = Callable[[str], str | None]


def inactive_file(text: str) -> dict[str, int]:
    """``memory.stat``'s inactive page cache only (``memory_used``'s one need), found
    without splitting every line: the exporter reads it for hundreds of containers."""
    padded = "\n" + text
    for key in ("total_inactive_file", "inactive_file"):
        at = padded.find(f"\n{key} ")
        if at >= 0:
            begin = at + len(key) + 2
            end = padded.find("\n", begin)
            value = padded[begin : end if end >= 0 else None].strip()
            if value.isdigit():
                return {key: int(value)}
    return {}


def sample(
    pid: int,
    read: Reader = read_text,
    mountinfo: str | None = None,
    *,
    mounts: dict[str, tuple[str, str]] | None = None,
    blkio: bool = True,
) -> Sample:
    """Read a running container's counters, its init being ``pid``. Many at once:
    pass ``mounts`` (``parse_cgroup_mounts`` of the mount table, parsed once for all);
    ``blkio=False`` leaves block I/O out (None)."""
    now = time.monotonic_ns()
    procs_text = read(f"/proc/{pid}/cgroup")
    if procs_text is None:
        raise BackendError("the container stopped while its statistics were read")
    procs = parse_proc_cgroup(procs_text)
    if mounts is None:
        mounts = parse_cgroup_mounts(mountinfo or read("/proc/self/mountinfo") or "")

    def file(v1: tuple[str, str], v2: str) -> str | None:
        d = cgroup_dir(v1[0], procs, mounts)
        if d and (text := read(f"{d}/{v1[1]}")) is not None:
            return text
        d2 = cgroup_dir("", procs, mounts)
        return read(f"{d2}/{v2}") if d2 else None

    cpu: int | None = None
    if (t := file(("cpuacct", "cpuacct.usage"), "cpu.stat")) is not None:
        if t.strip().isdigit():
            cpu = int(t)
        elif "usage_usec" in (kv := parse_keyed(t)):
            cpu = kv["usage_usec"] * 1000
    usage_t = file(("memory", "memory.usage_in_bytes"), "memory.current")
    stat_t = file(("memory", "memory.stat"), "memory.stat") or ""
    limit_t = file(("memory", "memory.limit_in_bytes"), "memory.max")
    pids_t = file(("pids", "pids.current"), "pids.current")
    pmax_t = file(("pids", "pids.max"), "pids.max")
    blk_read = blk_write = None
    d = cgroup_dir("blkio", procs, mounts) if blkio else ""
    if d and (t := read(f"{d}/blkio.throttle.io_service_bytes")) is not None:
        blk_read, blk_write = parse_blkio_v1(t)
    elif (
        blkio and (d2 := cgroup_dir("", procs, mounts)) and (t := read(f"{d2}/io.stat")) is not None
    ):
        blk_read, blk_write = parse_io_stat_v2(t)
    rx, tx = parse_net_dev(read(f"/proc/{pid}/net/dev") or "")
    return Sample(
        time_ns=now,
        cpu_ns=cpu,
        memory=memory_used(parse_int(usage_t) if usage_t else None, inactive_file(stat_t)),
        memory_limit=parse_int(limit_t) if limit_t else None,
        pids=parse_int(pids_t) if pids_t else None,
        pids_limit=parse_int(pmax_t) if pmax_t else None,
        net_rx=rx,
        net_tx=tx,
        block_read=blk_read,
        block_write=blk_write,
    )


def host_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def stats_of(name: str, cid: str, prev: Sample, cur: Sample) -> Stats:
    limit = cur.memory_limit
    total = limit if limit is not None else host_memory()
    mem_pct = cur.memory / total * 100 if cur.memory is not None and total else None
    return Stats(
        name=name,
        id=cid,
        cpu_percent=cpu_percent(prev, cur),
        memory=cur.memory,
        memory_limit=total,
        memory_percent=mem_pct,
        pids=cur.pids,
        pids_limit=cur.pids_limit,
        net_rx=cur.net_rx,
        net_tx=cur.net_tx,
        block_read=cur.block_read,
        block_write=cur.block_write,
    )


def running_pids(cfg: Any, names: list[str]) -> list[tuple[str, str, int]]:
    """(name, id, init pid) of each named container that runs (all running ones if none given)."""
    from lxcri_core.containers import listing

    out = []
    if names:
        for n in names:
            st = listing.status(cfg, listing.find(cfg, n))
            if st.status != "running" or st.pid is None:
                raise BackendError(f"container {st.name} is not running")
            out.append((st.name, st.id, st.pid))
    else:
        out = [
            (s.name, s.id, s.pid)
            for s in listing.list_containers(cfg)
            if s.status == "running" and s.pid is not None
        ]
    return out


def measure(
    targets: list[tuple[str, str, int]],
    prev: dict[str, Sample] | None = None,
    interval: float = 0.5,
) -> tuple[list[Stats], dict[str, Sample]]:
    """One reading of every target; CPU % needs a previous sample (taken ``interval`` ago
    when ``prev`` has none). A container that stopped meanwhile is left out."""
    mountinfo = read_text("/proc/self/mountinfo") or ""
    prev = dict(prev or {})
    missing = [t for t in targets if t[0] not in prev]
    for name, _, pid in missing:
        try:
            prev[name] = sample(pid, mountinfo=mountinfo)
        except BackendError:
            continue
    if missing:
        time.sleep(interval)
    out, now = [], {}
    for name, cid, pid in targets:
        if name not in prev:
            continue
        try:
            cur = sample(pid, mountinfo=mountinfo)
        except BackendError:
            continue
        now[name] = cur
        out.append(stats_of(name, cid, prev[name], cur))
    return out, now


def cgroup_files_dir(base: Path) -> Reader:
    """A reader serving recorded files from ``base`` by their last path component (tests)."""

    def read(path: str) -> str | None:
        name = path.rsplit("/", 1)[-1]
        name = {"cgroup": "proc-pid-cgroup", "dev": "net-dev"}.get(name, name)
        return read_text(str(base / name))

    return read
