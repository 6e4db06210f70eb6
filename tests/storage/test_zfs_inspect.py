"""The ZFS inspector from recorded output (tests/data/zfs, see its README): zfs-fuse
as this machine prints it, and OpenZFS 2.2 written from its documented formats."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lxcri_core.errors import StorageError
from lxcri_core.runner import CmdResult
from lxcri_core.storage.zfs_inspect import (
    ZfsReader,
    check_dataset_name,
    parse_zfs_get,
    parse_zfs_list,
    parse_zpool_list,
    parse_zpool_status,
    zfs_get_fuse_cmd,
    zfs_list_cmd,
)
from lxcri_core.storage.zfs_tree import build_tree, container_id, prune_estimate

DATA = Path(__file__).resolve().parent.parent / "data" / "zfs"
KEY_A = "sha256:a1b2c3d4e5f60718" + "a" * 48
KEY_B = "sha256:0f1e2d3c4b5a6978" + "b" * 48
KEY_C = "sha256:ffee000011112222" + "c" * 48


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_zpool_list_zfs_fuse_rounded_sizes() -> None:
    [pool] = parse_zpool_list(text("zfs-fuse-zpool-list.txt"), exact=False)
    assert (pool.name, pool.health, pool.capacity, pool.exact) == ("sitank", "ONLINE", 0, False)
    assert pool.size == 504 * 1024**2
    assert pool.fragmentation is None  # zfs-fuse has no such property


def test_zpool_list_openzfs_exact() -> None:
    rpool, tank = parse_zpool_list(text("openzfs-2.2-zpool-list.txt"))
    assert rpool.size == 499289948160 and rpool.free == 457414017024
    assert (rpool.fragmentation, rpool.capacity, rpool.exact) == (12, 8, True)
    assert (tank.health, tank.fragmentation) == ("DEGRADED", None)


def test_zpool_list_wrong_columns_is_an_error() -> None:
    with pytest.raises(StorageError, match="unexpected `zpool list` line"):
        parse_zpool_list(text("zfs-fuse-zpool-list.txt"), exact=True)


def test_zpool_status_both_flavours() -> None:
    [fuse] = parse_zpool_status(text("zfs-fuse-zpool-status.txt"))
    assert (fuse.state, fuse.scan, fuse.errors) == (
        "ONLINE",
        "none requested",
        "No known data errors",
    )
    assert [(d.name, d.depth) for d in fuse.devices] == [("sitank", 0), ("/tmp/storinsp/v.img", 1)]
    rpool, tank = parse_zpool_status(text("openzfs-2.2-zpool-status.txt"))
    assert rpool.scan.startswith("scrub repaired 0B")
    assert tank.state == "DEGRADED"
    assert tank.status.endswith("functioning in a degraded state.")  # wrapped lines joined
    bad = [d for d in tank.devices if d.state == "UNAVAIL"]
    assert [(d.depth, d.note) for d in bad] == [(2, "was /dev/disk/by-id/ata-WDC_WD20EFRX_3-part1")]
    assert tank.errors.startswith("2 data errors")


@pytest.mark.parametrize(
    ("name", "parse", "written"),
    [
        ("zfs-fuse-get-inspect.txt", parse_zfs_get, False),
        ("openzfs-2.2-zfs-list.txt", parse_zfs_list, True),
    ],
)
def test_datasets_and_tree(name: str, parse: object, written: bool) -> None:
    listing = parse(text(name))  # type: ignore[operator]
    assert listing.skipped == 0
    by = {d.name.partition("/")[2]: d for d in listing.datasets}
    layer_a = by["data/lxcri/layers/a1b2c3d4e5f60718"]
    assert layer_a.used == 1875968 and layer_a.type == "filesystem"
    assert by["data/subvol-100-disk-0"].origin.endswith("/0f1e2d3c4b5a6978@layer")
    assert (by["data/subvol-100-disk-0"].written is not None) == written
    assert by["data/lxcri"].compressratio is not None and by["data/lxcri"].compressratio > 1

    tree = build_tree(
        listing.datasets,
        images={"sha256:" + "1" * 64: [KEY_A, KEY_B]},
        ref_containers={"100": [KEY_A, KEY_B], "web": [KEY_A]},
    )
    layers = {n.dataset.rsplit("/", 1)[1]: n for n in tree.layers}
    a, b, c = layers["a1b2c3d4e5f60718"], layers["0f1e2d3c4b5a6978"], layers["ffee000011112222"]
    assert (a.key, b.key) == (KEY_A, KEY_B)  # full keys from the registry
    assert c.key == "ffee000011112222"  # a chain the registry does not know: its name
    assert (a.depth, b.depth, b.parent) == (0, 1, a.dataset)
    assert a.layers_above == (b.dataset,)
    # the bottom layer is held by every container above it, through the layer above
    assert sorted(x.rsplit("/", 1)[1] for x in a.containers) == [
        "subvol-100-disk-0", "subvol-101-disk-0", "web",
    ]  # fmt: skip
    assert any(h.dataset.endswith("@before-upgrade") for h in b.holders)  # a CT snapshot
    assert (c.holders, c.images, c.ref_containers) == ((), (), ())
    assert b.images == ("sha256:" + "1" * 64,) and b.ref_containers == ("100",)
    clones = {cl.container: cl for cl in tree.clones}
    assert set(clones) == {"100", "101", "web"}
    assert clones["101"].origin.endswith("subvol-100-disk-0@before-upgrade")  # a linked clone
    assert clones["101"].chain == (a.dataset, b.dataset)
    assert clones["web"].chain == (a.dataset,)
    assert clones["100"].snapshots == (clones["100"].dataset + "@before-upgrade",)

    est = prune_estimate(listing.datasets, keep=set())
    assert est.datasets == (c.dataset,) and est.bytes == c.used
    assert set(est.blocked) == {a.dataset, b.dataset}  # clones hold them
    assert prune_estimate(listing.datasets, keep={KEY_A, KEY_B, KEY_C}).bytes == 0
    # `lxcri image prune` prunes below zfs_pool only
    pool = c.dataset.split("/")[0]
    assert prune_estimate(listing.datasets, set(), f"{pool}/data").datasets == (c.dataset,)
    assert prune_estimate(listing.datasets, set(), f"{pool}/other").datasets == ()


def test_prune_estimate_goes_top_down() -> None:
    listing = parse_zfs_list(text("openzfs-2.2-zfs-list.txt"))
    lone = [d for d in listing.datasets if "subvol" not in d.name and "containers/" not in d.name]
    est = prune_estimate(lone, keep=set())
    names = [n.rsplit("/", 1)[1] for n in est.datasets]
    assert names.index("0f1e2d3c4b5a6978") < names.index("a1b2c3d4e5f60718")
    assert est.bytes == 360448 + 1875968 + 647168 and est.blocked == ()


def test_container_ids() -> None:
    assert container_id("rpool/data/subvol-105-disk-0") == "105"
    assert container_id("rpool/data/subvol-105-disk-0@snap") == "105"  # a snapshot's CT
    assert container_id("rpool/data/lxcri/containers/web") == "web"
    assert container_id("rpool/data/vm-200-disk-0") is None


def test_lines_that_do_not_parse_are_skipped_and_counted() -> None:
    """No user property is listed, so no value can span lines; still, a line that
    names no valid dataset or has the wrong columns is skipped, never shown."""
    good = text("openzfs-2.2-zfs-list.txt")
    evil = (
        "rpool/data/lxcri/layers/0000000000000000\tfilesystem\t1\t1\t-\t1.00\t0\textra\n"
        "[red]fake\tfilesystem\t1\t1\t-\t1.00\t0\n"
        "rpool/ok\tfilesystem\t1\t1\trpool/\x1b[2J@x\t1.00\t0\n"
        "rpool/size\tfilesystem\tlots\t1\t-\t1.00\t0\n"
    )
    listing = parse_zfs_list(good + evil)
    assert listing.skipped == 4 and len(listing.datasets) == 15
    fuse = parse_zfs_get(
        text("zfs-fuse-get-inspect.txt")
        + "sitank\tlxcri:key\ta\n[x]\ttype\tfilesystem\nnewline\n"
        + "sitank/c\torigin\tnot a snapshot!\n"
    )
    assert fuse.skipped == 4 and len(fuse.datasets) == 15


def test_origin_cycles_end() -> None:
    """Recorded output is data: origins that loop must not hang the tree."""
    from lxcri_core.storage.zfs_inspect import ZDataset

    a = ZDataset("p/lxcri/layers/aaaaaaaaaaaaaaaa", "filesystem", 1, 1, "p/x@s", None, None)
    x = ZDataset("p/x", "filesystem", 1, 1, "p/lxcri/layers/aaaaaaaaaaaaaaaa@layer", None, None)
    tree = build_tree([a, x])
    assert [c.dataset for c in tree.clones] == ["p/x"]
    assert prune_estimate([a, x], set()).datasets == ()


def test_big_listing_is_quick() -> None:
    """100 chains of 20 layers, 5000 containers: one refresh well under a second."""
    import time

    lines = []
    for c in range(100):
        parent = "-"
        for d in range(20):
            name = f"rpool/data/lxcri/layers/{c:08x}{d:08x}"
            lines.append(f"{name}\tfilesystem\t1000\t2000\t{parent}\t1.00\t0")
            lines.append(f"{name}@layer\tsnapshot\t0\t2000\t-\t1.00\t0")
            parent = f"{name}@layer"
        for k in range(50):
            lines.append(
                f"rpool/data/subvol-{c * 50 + k + 100}-disk-0\tfilesystem\t5\t9\t{parent}\t1.00\t1"
            )
    start = time.process_time()
    listing = parse_zfs_list("\n".join(lines))
    tree = build_tree(listing.datasets)
    est = prune_estimate(listing.datasets, set())
    assert time.process_time() - start < 3  # ~0.3 s here; generous for a busy machine
    assert len(tree.layers) == 2000 and len(tree.clones) == 5000
    assert len(tree.layers[0].containers) == 50 and est.datasets == ()


@pytest.mark.parametrize(
    "bad", ["-o", "--help", "", "rpool/", "rpool//x", "rp\tool", "rpool\nx", "rpool@snap",
            "räpool", "rpool/ x", "a" * 300, "1pool", "rpool/$(id)"],
)  # fmt: skip
def test_pool_names_are_checked(bad: str) -> None:
    with pytest.raises(StorageError, match="not a ZFS pool or dataset name"):
        check_dataset_name(bad)


def test_pool_name_good() -> None:
    assert check_dataset_name("rpool/data/my set.1:x") == "rpool/data/my set.1:x"


class Recorded:
    """A runner answering from recordings, as zfs-fuse or OpenZFS would."""

    def __init__(self, fuse: bool) -> None:
        self.fuse = fuse
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        argv = list(argv)
        self.calls.append(argv)
        if "-Hp" in argv and argv[:2] in (["zpool", "list"], ["zfs", "list"]) and self.fuse:
            return CmdResult(2, "", text("zfs-fuse-zpool-list-p.stderr.txt"))
        flavour = "zfs-fuse" if self.fuse else "openzfs-2.2"
        files = {
            ("zpool", "list"): f"{flavour}-zpool-list.txt",
            ("zpool", "status"): f"{flavour}-zpool-status.txt",
            ("zfs", "get"): "zfs-fuse-get-inspect.txt",
            ("zfs", "list"): "openzfs-2.2-zfs-list.txt",
        }  # fmt: skip
        return CmdResult(0, text(files[(argv[0], argv[1])]), "")


@pytest.mark.parametrize("fuse", [True, False])
def test_reader_learns_the_flavour_once(fuse: bool) -> None:
    run = Recorded(fuse)
    reader = ZfsReader(run)
    for _ in range(3):  # three refreshes
        assert reader.pools()[0].exact is not fuse
        assert len(reader.datasets("rpool").datasets) == 15
    # one failed probe on zfs-fuse, then one command per listing
    assert len(run.calls) == 6 + (1 if fuse else 0)
    assert reader.fuse is fuse
    assert run.calls[-1] == (zfs_get_fuse_cmd("rpool") if fuse else zfs_list_cmd("rpool"))


def test_reader_reports_a_missing_pool() -> None:
    def run(argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        return CmdResult(1, "", "cannot open 'nope': dataset does not exist\n")

    with pytest.raises(StorageError, match="cannot open 'nope': dataset does not exist"):
        ZfsReader(run).datasets("nope")
