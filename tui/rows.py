"""The Containers table's rows, built off the UI thread: plain tuples of text, so the
UI thread only compares them with what it shows and changes the cells that differ."""

from __future__ import annotations

from datetime import datetime

from lxcri_tui.fmt import human_size, percent, safe_str, uptime
from lxcri_tui.source import Usage

from lxcri_core.backend import ContainerStatus

COLUMNS = (
    "VMID",
    "NAME",
    "IMAGE",
    "STATUS",
    "UPTIME",
    "CPU",
    "MEM",
    "IP",
    "PORTS",
    "HEALTH",
    "RST",
)

Row = tuple[str, ...]


def _image(c: ContainerStatus) -> str:
    name = c.image.rsplit("/", 1)[-1] if c.image else "-"
    digest = c.image_digest.split(":", 1)[-1][:8]
    return f"{name}@{digest}" if digest else name


def _ports(c: ContainerStatus) -> str:
    return ",".join(f"{p.host_port}->{p.container_port}/{p.protocol}" for p in c.ports)


def _status(c: ContainerStatus) -> str:
    if c.lock:
        return f"{c.status} ({c.lock})"
    if c.health and c.status == "running":
        return f"running ({c.health})"
    if c.status == "exited" and c.exit_code not in (None, 0):
        return f"exited ({c.exit_code})"
    return c.status


def row(c: ContainerStatus, u: Usage | None, now: datetime) -> Row:
    running = c.status == "running"
    return tuple(
        safe_str(v)
        for v in (
            c.vmid,
            c.name,
            _image(c),
            _status(c),
            uptime(c.started_at, now) if running else "",
            percent(u.cpu_percent) if u else "-",
            human_size(u.memory) if u and u.memory is not None else "-",
            c.ipv4 or c.ipv6 or "-",
            _ports(c) or "-",
            c.restarts,
        )
    )


def matches(r: Row, needle: str) -> bool:
    """The ``/`` filter: any cell holding ``needle`` (case-insensitive)."""
    return not needle or any(needle in cell.lower() for cell in r)
