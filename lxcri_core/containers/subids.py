"""``/etc/subuid`` and ``/etc/subgid`` entries for root.

LXC maps ids through ``newuidmap``/``newgidmap`` when they are installed,
and those refuse ranges not delegated to root in these files. Proxmox hosts
ship ``root:100000:65536``; plain Debian hosts do not, so lxcri adds the
range it needs (once, atomically) before creating an unprivileged container.

A range of another user overlapping lxcri's map is refused: Debian's
``adduser`` gives the first user ``100000:65536``, and that user could then
``unshare --map-users=100000,0,65536`` into a namespace owning every
unprivileged container's files (their rootfs, upper dirs and volumes).
"""

from __future__ import annotations

from pathlib import Path

from lxcri_core.errors import ConfigError
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


def overlapping(text: str, start: int, count: int) -> list[tuple[str, int, int]]:
    """Entries of users other than root in ``text`` sharing an id with ``[start, start+count)``."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] in ("root", "0"):
            continue
        try:
            s, n = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if s < start + count and start < s + n:
            out.append((parts[0], s, n))
    return out


def _refuse_overlaps(path: Path, text: str, start: int, count: int) -> None:
    found = overlapping(text, start, count)
    if not found:
        return
    user, s, n = found[0]
    flag = "--del-subuids" if path.name == "subuid" else "--del-subgids"
    raise ConfigError(
        f"{path} gives user {user} ids {s}-{s + n - 1}, which overlap the ids lxcri maps "
        f"containers to ({start}-{start + count - 1}): {user} could reach every unprivileged "
        f"container's files; move that range (usermod {flag} {s}-{s + n - 1} {user}, then "
        f"{flag.replace('del', 'add')} a range past {start + count - 1})"
    )


def check_root_subids(start: int, count: int, etc: Path = Path("/etc")) -> None:
    """A map the user chose (``--idmap``) must already be root's in both files; lxcri adds
    only its default range by itself."""
    for name in ("subuid", "subgid"):
        path = etc / name
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        _refuse_overlaps(path, text, start, count)
        if not covers(text, "root", start, count):
            flag = "--add-subuids" if name == "subuid" else "--add-subgids"
            raise ConfigError(
                f"--idmap {start}:{count}: {path} does not give root ids "
                f"{start}-{start + count - 1}; add them (usermod {flag} "
                f"{start}-{start + count - 1} root) or pick a delegated range"
            )


def ensure_root_subids(start: int, count: int, etc: Path = Path("/etc")) -> None:
    for name in ("subuid", "subgid"):
        path = etc / name
        with flocked(Path("/run") / f"lxcri-{name}.lock"):
            try:
                text = path.read_text()
            except FileNotFoundError:
                text = ""
            _refuse_overlaps(path, text, start, count)
            if covers(text, "root", start, count):
                continue
            if text and not text.endswith("\n"):
                text += "\n"
            atomic_write(path, f"{text}root:{start}:{count}\n".encode(), mode=0o644)
