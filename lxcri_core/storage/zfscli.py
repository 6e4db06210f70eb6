"""The ``zfs`` CLI as data: commands, and pure parsers of their output.

Works with OpenZFS and with zfs-fuse (pool version 23). zfs-fuse's ``zfs
list`` has no ``-p``, so exact byte counts come from ``zfs get -Hp``, which
both accept; ``parse_zfs_list`` still reads either form (exact numbers or
human sizes like ``1.5M``) for recorded ``zfs list -H`` output.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxcri_core import sizes
from lxcri_core.errors import StorageError
from lxcri_core.storage.cmd import Runner, output, run_cmd


@dataclass(frozen=True)
class Dataset:
    name: str
    used: int
    referenced: int
    origin: str | None  # the snapshot this clone came from
    type: str = "filesystem"  # filesystem, snapshot or volume


def parse_size(text: str) -> int:
    """``118784`` -> 118784, ``116K`` -> 118784, ``1.50M`` -> 1572864, ``-``/``none`` -> 0."""
    text = text.strip()
    if text in ("-", "none", ""):
        return 0
    try:
        return sizes.parse_size(text)
    except ValueError:
        raise StorageError(f"cannot parse zfs size {text!r}") from None


def _origin(text: str) -> str | None:
    return None if text in ("-", "") else text


def zfs_list_cmd(root: str) -> list[str]:
    return ["zfs", "list", "-H", "-r", "-t", "all", "-o", "name,used,refer,origin", root]


def parse_zfs_list(text: str) -> list[Dataset]:
    """Parse ``zfs list -H[p] -o name,used,refer,origin`` (tab separated)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise StorageError(f"unexpected `zfs list` line {line!r}")
        name, used, refer, origin = fields
        kind = "snapshot" if "@" in name else "filesystem"
        out.append(Dataset(name, parse_size(used), parse_size(refer), _origin(origin), kind))
    return out


def zfs_get_space_cmd(root: str) -> list[str]:
    return [
        "zfs", "get", "-Hp", "-r", "-o", "name,property,value",
        "type,used,referenced,origin", root,
    ]  # fmt: skip


def parse_zfs_get(text: str) -> list[Dataset]:
    """Parse ``zfs get -Hp -o name,property,value type,used,referenced,origin``."""
    props: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise StorageError(f"unexpected `zfs get` line {line!r}")
        name, prop, value = fields
        props.setdefault(name, {})[prop] = value
    return [
        Dataset(
            name,
            parse_size(p.get("used", "0")),
            parse_size(p.get("referenced", "0")),
            _origin(p.get("origin", "-")),
            p.get("type", "snapshot" if "@" in name else "filesystem"),
        )
        for name, p in props.items()
    ]


def read_datasets(root: str, run: Runner = run_cmd) -> list[Dataset]:
    """Every dataset and snapshot at and below ``root``, with exact sizes."""
    return parse_zfs_get(output(zfs_get_space_cmd(root), run))


def exists(name: str, run: Runner = run_cmd) -> bool:
    try:
        output(["zfs", "list", "-H", "-o", "name", "-t", "all", name], run)
    except StorageError as e:
        if "does not exist" in str(e):
            return False
        raise
    return True


def get_prop(name: str, prop: str, run: Runner = run_cmd) -> str:
    return output(["zfs", "get", "-H", "-o", "value", prop, name], run).strip()


def names(root: str, run: Runner = run_cmd) -> list[str]:
    """Names of the datasets and snapshots at and below ``root`` ([] if it is missing)."""
    try:
        text = output(["zfs", "list", "-H", "-r", "-t", "all", "-o", "name", root], run)
    except StorageError as e:
        if "does not exist" in str(e):
            return []
        raise
    return [line for line in text.splitlines() if line.strip()]


def zfs(*args: str, run: Runner = run_cmd) -> str:
    return output(["zfs", *args], run)
