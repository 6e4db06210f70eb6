"""ZFS state read in bulk: pools, their health, and every dataset's space.

The commands are data and the parsers are pure (tested from recorded output
in tests/data/zfs). Two flavours answer differently:

- OpenZFS (2.x): ``zpool list -Hp`` gives exact bytes and fragmentation, and
  ``zfs list -Hp`` one line per dataset with ``written``;
- zfs-fuse (pool version 23): neither command takes ``-p``, ``zpool list``
  knows no ``fragmentation`` and ``zfs`` no ``written``. Pool sizes are then
  the rounded ones ``zpool list -H`` prints (``Pool.exact`` is False); the
  datasets' exact bytes come from ``zfs get -Hp`` (six lines per dataset).

``ZfsReader`` tries OpenZFS's form once and remembers the flavour, so a
refresh is one ``zpool list``, one ``zpool status`` and one ``zfs`` listing
however many containers there are.

No user property is read. Dataset names cannot hold a tab or a newline
(ZFS allows only letters, digits, ``-_.:`` and space) and neither can the
system properties listed, but a user property's value can: one such as
``lxcri:key`` set to ``x\nrpool/fake\ttype\tfilesystem`` would print lines
of its own, forging datasets or other datasets' properties. A layer's full
chain key comes from lxcri's registry instead (zfs_tree). A line that does
not parse, or names no valid dataset, is skipped and counted.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxcri_core.errors import StorageError
from lxcri_core.runner import CmdResult
from lxcri_core.storage.cmd import Runner
from lxcri_core.storage.zfscli import parse_size

ZPOOL_LIST = [
    "zpool", "list", "-Hp", "-o", "name,size,allocated,free,fragmentation,capacity,health",
]  # fmt: skip
ZPOOL_LIST_FUSE = ["zpool", "list", "-H", "-o", "name,size,allocated,free,capacity,health"]
ZPOOL_STATUS = ["zpool", "status"]
DATASET_COLUMNS = "name,type,used,referenced,origin,compressratio,written"
FUSE_PROPS = "type,used,referenced,origin,compressratio"
_FUSE_PROP_SET = frozenset(FUSE_PROPS.split(","))

# ZFS's own name rule (zfs_namecheck.c): letters, digits, -_.: and space; a
# pool starts with a letter. Nothing here ever reaches a shell, but a name
# starting with '-' would be read as an option.
_POOL = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
_COMPONENT = re.compile(r"[A-Za-z0-9_.: -]+")
_SNAPSHOT = re.compile(r"[A-Za-z0-9_.:-]+")
#: ZFS's limit on a dataset name (ZFS_MAX_DATASET_NAME_LEN).
MAX_NAME = 255


def check_dataset_name(name: str) -> str:
    """``name`` if it is a pool or dataset name (``rpool``, ``rpool/data``), else StorageError."""
    parts = name.split("/")
    if (
        len(name) > MAX_NAME
        or not _POOL.fullmatch(parts[0])
        or not all(_COMPONENT.fullmatch(p) and p.strip() == p for p in parts[1:])
    ):
        raise StorageError(
            f"{name!r} is not a ZFS pool or dataset name (letters, digits, -_.: and "
            "space, starting with a letter, parts joined by /)"
        )
    return name


def valid_name(name: str) -> bool:
    """Whether ``name`` is a dataset or snapshot name as zfs prints them."""
    fs, at, snap = name.partition("@")
    try:
        check_dataset_name(fs)
    except StorageError:
        return False
    return not at or bool(_SNAPSHOT.fullmatch(snap))


@dataclass(frozen=True)
class Pool:
    name: str
    health: str  # ONLINE, DEGRADED, FAULTED, ...
    size: int
    allocated: int
    free: int
    capacity: int | None  # percent
    fragmentation: int | None  # percent; None where the pool or zfs-fuse has none
    exact: bool  # False: sizes as zpool rounds them (zfs-fuse has no -p)


@dataclass(frozen=True)
class Device:
    name: str
    state: str
    read: str  # error counts as zpool prints them (``0``, ``1.2K``)
    write: str
    cksum: str
    depth: int  # 0 the pool itself, 1 a top-level vdev, ...
    note: str = ""  # ``was /dev/...`` and the like


@dataclass(frozen=True)
class PoolStatus:
    name: str
    state: str
    status: str = ""
    action: str = ""
    scan: str = ""
    errors: str = ""
    devices: tuple[Device, ...] = ()


@dataclass(frozen=True)
class ZDataset:
    name: str
    type: str  # filesystem, volume or snapshot
    used: int
    referenced: int
    origin: str | None  # the snapshot a clone came from
    compressratio: float | None
    written: int | None  # None on zfs-fuse (no such property)

    @property
    def filesystem(self) -> str:
        """The dataset itself, or a snapshot's dataset."""
        return self.name.partition("@")[0]


@dataclass(frozen=True)
class Listing:
    datasets: list[ZDataset]
    skipped: int = 0  # lines that did not parse (a hostile property value)


def _int(text: str) -> int | None:
    text = text.strip().rstrip("%")
    return int(text) if text.isdigit() else None


def _ratio(text: str) -> float | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)x?", text.strip())
    return float(m.group(1)) if m else None


def _origin(text: str) -> str | None:
    return None if text in ("-", "") else text


def parse_zpool_list(text: str, exact: bool = True) -> list[Pool]:
    """``zpool list -Hp -o name,size,allocated,free,fragmentation,capacity,health`` (OpenZFS)
    or, ``exact`` False, ``zpool list -H -o name,size,allocated,free,capacity,health``."""
    out = []
    for line in text.splitlines():
        f = line.split("\t")
        if not line.strip():
            continue
        if exact and len(f) == 7:
            name, size, alloc, free, frag, cap, health = f
        elif not exact and len(f) == 6:
            name, size, alloc, free, cap, health = f
            frag = "-"
        else:
            raise StorageError(f"unexpected `zpool list` line {line!r}")
        out.append(
            Pool(
                name,
                health,
                parse_size(size),
                parse_size(alloc),
                parse_size(free),
                _int(cap),
                _int(frag),
                exact,
            )
        )
    return out


_STATUS_KEY = re.compile(r"^\s*(pool|state|status|action|see|scan|scrub|errors|config):\s?(.*)$")
_DEVICE = re.compile(r"^\t(\s*)(\S+)\s+([A-Z]+)(?:\s+(\S+)\s+(\S+)\s+(\S+))?\s*(.*)$")


def parse_zpool_status(text: str) -> list[PoolStatus]:
    """``zpool status`` of every pool (OpenZFS and zfs-fuse print the same sections;
    zfs-fuse says ``scrub:`` where OpenZFS says ``scan:``)."""
    out: list[PoolStatus] = []
    cur: dict[str, str] = {}
    devices: list[Device] = []
    last = ""
    in_config = False

    def flush() -> None:
        if "pool" in cur:
            out.append(
                PoolStatus(
                    cur["pool"],
                    cur.get("state", ""),
                    cur.get("status", ""),
                    cur.get("action", ""),
                    cur.get("scan", ""),
                    cur.get("errors", ""),
                    tuple(devices),
                )
            )

    for line in text.splitlines():
        m = _STATUS_KEY.match(line)
        if m and not line.startswith("\t"):
            key, value = m.group(1), m.group(2).strip()
            if key == "pool":
                flush()
                cur, devices = {}, []
            key = "scan" if key == "scrub" else key
            in_config = key == "config"
            cur[key] = value
            last = key
            continue
        if in_config:
            d = _DEVICE.match(line)
            if d and d.group(2) != "NAME":
                depth = len(d.group(1).expandtabs(2)) // 2
                devices.append(
                    Device(
                        d.group(2),
                        d.group(3),
                        d.group(4) or "",
                        d.group(5) or "",
                        d.group(6) or "",
                        depth,
                        d.group(7).strip(),
                    )
                )
            continue
        if line.startswith("\t") and last in cur and last != "config":
            cur[last] = f"{cur[last]} {line.strip()}".strip()  # a wrapped message
    flush()
    return out


def zfs_list_cmd(root: str | None = None) -> list[str]:
    """OpenZFS: every dataset (below ``root``), one line each, exact bytes."""
    cmd = ["zfs", "list", "-Hp", "-t", "all", "-o", DATASET_COLUMNS]
    return [*cmd, "-r", root] if root else cmd


def zfs_get_fuse_cmd(root: str | None = None) -> list[str]:
    """zfs-fuse: the same properties as ``zfs get -Hp`` (no ``written``)."""
    cmd = ["zfs", "get", "-Hp", "-r", "-o", "name,property,value", FUSE_PROPS]
    return [*cmd, root] if root else cmd


def parse_zfs_list(text: str) -> Listing:
    """``zfs list -Hp -t all -o DATASET_COLUMNS`` (name, type ... written)."""
    out = []
    skipped = 0
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) != 7 or not valid_name(f[0]) or not (f[4] == "-" or valid_name(f[4])):
            skipped += bool(line.strip())
            continue
        name, typ, used, refer, origin, ratio, written = f
        try:
            out.append(
                ZDataset(
                    name,
                    typ,
                    parse_size(used),
                    parse_size(refer),
                    _origin(origin),
                    _ratio(ratio),
                    None if written == "-" else parse_size(written),
                )
            )
        except StorageError:
            skipped += 1
    return Listing(out, skipped)


def parse_zfs_get(text: str) -> Listing:
    """``zfs get -Hp -r -o name,property,value FUSE_PROPS`` (type ... compressratio)."""
    props: dict[str, dict[str, str]] = {}
    skipped = 0
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) != 3 or not valid_name(f[0]) or f[1] not in _FUSE_PROP_SET:
            skipped += bool(line.strip())
            continue
        props.setdefault(f[0], {})[f[1]] = f[2]
    out = []
    for name, p in props.items():
        origin = _origin(p.get("origin", "-"))
        if origin is not None and not valid_name(origin):
            skipped += 1
            continue
        try:
            out.append(
                ZDataset(
                    name,
                    p.get("type", "snapshot" if "@" in name else "filesystem"),
                    parse_size(p.get("used", "0")),
                    parse_size(p.get("referenced", "0")),
                    origin,
                    _ratio(p.get("compressratio", "")),
                    None,
                )
            )
        except StorageError:
            skipped += 1
    return Listing(out, skipped)


def run_lossy(argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
    """The inspector's runner: like ``run_cmd`` but bytes that are not UTF-8 (a vdev
    file's path in ``zpool status``) become U+FFFD instead of ending the command."""
    try:
        proc = subprocess.run(
            list(argv), input=None if stdin is None else stdin.encode(),
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip
    except FileNotFoundError:
        raise StorageError(f"{argv[0]} is not installed; install zfsutils or zfs-fuse") from None
    except subprocess.TimeoutExpired:
        raise StorageError(f"`{' '.join(argv)}` did not finish within 120 s") from None
    return CmdResult(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def _flavour_error(res: CmdResult) -> bool:
    """Whether a failed command failed because this zfs is zfs-fuse (an option or a
    property it does not know), not because the pool is missing or zfs is down."""
    err = res.stderr
    return "invalid option 'p'" in err or "invalid property" in err


@dataclass
class ZfsReader:
    """Reads pools and datasets; remembers which flavour answered (None: not yet known)."""

    run: Runner = run_lossy
    fuse: bool | None = None
    commands: list[list[str]] = field(default_factory=list)  # what ran, for the curious

    def _run(self, argv: list[str]) -> CmdResult:
        self.commands.append(argv)
        return self.run(argv)

    def _pick(self, modern: list[str], old: list[str]) -> tuple[str, bool]:
        """The output of ``modern`` (OpenZFS) or, on zfs-fuse, of ``old``."""
        if not self.fuse:
            res = self._run(modern)
            if res.returncode == 0:
                self.fuse = False
                return res.stdout, False
            if self.fuse is False or not _flavour_error(res):
                raise StorageError(_failed(modern, res))
            self.fuse = True
        res = self._run(old)
        if res.returncode != 0:
            raise StorageError(_failed(old, res))
        return res.stdout, True

    def pools(self, pool: str | None = None) -> list[Pool]:
        extra = [pool] if pool else []
        text, fuse = self._pick([*ZPOOL_LIST, *extra], [*ZPOOL_LIST_FUSE, *extra])
        return parse_zpool_list(text, exact=not fuse)

    def status(self, pool: str | None = None) -> list[PoolStatus]:
        argv = [*ZPOOL_STATUS, *([pool] if pool else [])]
        res = self._run(argv)
        if res.returncode != 0:
            raise StorageError(_failed(argv, res))
        return parse_zpool_status(res.stdout)

    def datasets(self, root: str | None = None) -> Listing:
        text, fuse = self._pick(zfs_list_cmd(root), zfs_get_fuse_cmd(root))
        return parse_zfs_get(text) if fuse else parse_zfs_list(text)


def _failed(argv: list[str], res: CmdResult) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    why = lines[0].strip() if lines else f"exit status {res.returncode}"
    return f"`{' '.join(argv)}` failed: {why[:300]}"
