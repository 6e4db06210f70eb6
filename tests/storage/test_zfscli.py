"""The zfs output parsers, from output recorded on zfs-fuse (no zfs needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lxcri_core.errors import StorageError
from lxcri_core.runner import CmdResult
from lxcri_core.storage.zfscli import (
    parse_size,
    parse_zfs_get,
    parse_zfs_list,
    read_datasets,
    zfs_get_space_cmd,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "zfs"
LAYER0 = "rpool/data/lxcri/layers/a1b2c3d4e5f60718"
LAYER1 = "rpool/data/lxcri/layers/0f1e2d3c4b5a6978"


@pytest.mark.parametrize(
    ("text", "n"),
    [("0", 0), ("118784", 118784), ("116K", 118784), ("1.50M", 1572864), ("2G", 2 << 30)],
)
def test_parse_size(text: str, n: int) -> None:
    assert parse_size(text) == n


def test_parse_size_none_and_garbage() -> None:
    assert parse_size("-") == 0
    assert parse_size("none") == 0
    with pytest.raises(StorageError, match="12Q"):
        parse_size("12Q")


def test_parse_zfs_get_recorded() -> None:
    sets = {d.name: d for d in parse_zfs_get((DATA / "zfs-fuse-get-space.txt").read_text())}
    assert sets[LAYER0].used == 2220032
    assert sets[LAYER0].origin is None
    assert sets[LAYER1].origin == f"{LAYER0}@layer"
    assert sets[LAYER1].used == 94208
    assert sets[f"{LAYER1}@layer"].type == "snapshot"
    clone = sets["rpool/data/subvol-100-disk-0"]
    assert clone.origin == f"{LAYER1}@layer"
    assert clone.referenced == 2224128
    assert [d.type for d in sets.values()].count("snapshot") == 2


def test_parse_zfs_list_recorded_human_sizes() -> None:
    sets = {d.name: d for d in parse_zfs_list((DATA / "zfs-fuse-list.txt").read_text())}
    assert sets["rpool"].used == int(3.21 * 1024 * 1024)
    assert sets[LAYER1].used == 92 * 1024
    assert sets[LAYER1].origin == f"{LAYER0}@layer"
    assert sets[f"{LAYER0}@layer"].type == "snapshot"
    assert sets["rpool/data/subvol-100-disk-0"].used == 0


def test_parse_zfs_list_exact_numbers() -> None:
    # OpenZFS `zfs list -Hp` prints bytes; the same parser reads them.
    text = "rpool/data/subvol-101-disk-0\t8192\t2224128\trpool/data/l@layer\n"
    (d,) = parse_zfs_list(text)
    assert (d.used, d.referenced, d.origin) == (8192, 2224128, "rpool/data/l@layer")


def test_parsers_reject_other_output() -> None:
    with pytest.raises(StorageError, match="unexpected `zfs list` line"):
        parse_zfs_list("cannot open 'x': dataset does not exist\n")
    with pytest.raises(StorageError, match="unexpected `zfs get` line"):
        parse_zfs_get("rpool used\n")


def test_read_datasets_runs_the_command_as_data() -> None:
    seen: list[list[str]] = []

    def run(argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        seen.append(list(argv))
        return CmdResult(0, (DATA / "zfs-fuse-get-space.txt").read_text(), "")

    sets = read_datasets("rpool/data", run=run)
    assert seen == [zfs_get_space_cmd("rpool/data")]
    assert seen[0][:3] == ["zfs", "get", "-Hp"]
    assert len(sets) == 8
