"""``/etc/subuid`` and ``/etc/subgid`` entries for root.

LXC maps ids through ``newuidmap``/``newgidmap`` when they are installed,
and those refuse ranges not delegated to root in these files. Proxmox hosts
ship ``root:100000:65536``; plain Debian hosts do not, so lxcri adds the
range it needs (once, atomically) before creating an unprivileged container.
"""

from __future__ import annotations

from pathlib import Path

from lxcri_core.fsutil import atomic_write, flocked


def covers(text: str, user: str, start: int, count: int) -> bool:
    """Whether ``text`` (subuid format) delegates ``[start, start+count)`` to ``user``."""
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, "0"):
            continue
        try:
            s, n = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if s <= start and start + count <= s + n:
            return True
    return False


def ensure_root_subids(start: int, count: int, etc: Path = Path("/etc")) -> None:
    for name in ("subuid", "subgid"):
        path = etc / name
        with flocked(Path("/run") / f"lxcri-{name}.lock"):
            try:
                text = path.read_text()
            except FileNotFoundError:
                text = ""
            if covers(text, "root", start, count):
                continue
            if text and not text.endswith("\n"):
                text += "\n"
            atomic_write(path, f"{text}root:{start}:{count}\n".encode(), mode=0o644)
