"""``inspect-storage`` live: lxcri's own backends on a real zfs-fuse pool and on
overlayfs/dir, the inspector's figures checked against what zfs and the disk say."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.storage import open_backend
from lxcri_core.storage.fstree import disk_usage
from lxcri_core.storage.storage_report import storage_report
from lxcri_core.storage.zfs_inspect import ZfsReader
from lxcri_core.store.layout import Store
from tests.conftest import invoke
from tests.support.images import busybox_image, multilayer_image


def zfs_used(name: str) -> int:
    out = subprocess.run(
        ["zfs", "get", "-Hp", "-o", "value", "used", name],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


@pytest.mark.slow
def test_zfs_live(
    cfg: Config, zfs_dataset: str, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    cfg = cfg.with_overrides(zfs_pool=zfs_dataset)
    be = open_backend(cfg, "zfs")
    multi = put_image(multilayer_image(), "multi:1")
    base = put_image(busybox_image(), "base:1")
    chain_m = be.prepare_image(store, multi)
    chain_b = be.prepare_image(store, base)
    assert chain_b.keys[0] == chain_m.keys[0]  # one shared bottom layer
    be.create_rootfs(chain_m, "105")
    be.create_rootfs(chain_b, "web")
    ct = f"{zfs_dataset}/subvol-105-disk-0"
    subprocess.run(["zfs", "snapshot", f"{ct}@snap1"], check=True)
    try:
        reader = ZfsReader()
        report = storage_report(cfg, zfs_dataset, reader)
        z = report.zfs
        assert z is not None and z.flavour == "zfs-fuse"
        # one zpool list (after one failed -Hp probe), one zpool status, one zfs listing
        assert [c[:2] for c in reader.commands] == [
            ["zpool", "list"], ["zpool", "list"], ["zpool", "status"], ["zfs", "get"],
        ]  # fmt: skip
        [pool] = z.pools
        assert pool.name == zfs_dataset.split("/")[0] and pool.health == "ONLINE"
        assert [s.state for s in z.status] == ["ONLINE"]
        layers = {n.key: n for n in z.tree.layers}
        assert set(layers) == set(chain_m.keys) | set(chain_b.keys)
        for n in layers.values():
            assert n.used == zfs_used(n.dataset)  # zfs's own figure, exactly
        bottom = layers[chain_m.keys[0]]
        assert {c.rsplit("/", 1)[1] for c in bottom.containers} == {"subvol-105-disk-0", "web"}
        assert bottom.images == tuple(sorted([multi, base]))
        assert bottom.ref_containers == ("105", "web")
        top = layers[chain_m.key]
        assert top.clones == (ct,) and top.depth == len(chain_m.keys) - 1
        assert any(h.dataset == f"{ct}@snap1" for h in top.holders)
        clones = {c.container: c for c in z.tree.clones}
        assert clones["105"].chain == tuple(layers[k].dataset for k in chain_m.keys)
        assert clones["105"].used == zfs_used(ct)
        assert clones["105"].snapshots == (f"{ct}@snap1",)
        # every chain is held by an image or a container: nothing to prune
        assert z.prune.bytes == 0 and z.prune.datasets == ()

        # the image 'multi' goes, then its container: its upper layers are prunable
        Store(cfg.image_store).untag("multi:1")
        z = storage_report(cfg, zfs_dataset).zfs
        assert z is not None and z.prune.bytes == 0  # CT 105 still holds them
        subprocess.run(["zfs", "destroy", f"{ct}@snap1"], check=True)
        be.remove_rootfs("105")
        upper = [layers[k].dataset for k in chain_m.keys[1:]]
        Path(os.environ["LXCRI_CONFIG"]).write_text(f"zfs_pool: {zfs_dataset}\n")
        result = invoke(
            "--root", str(cfg.root), "inspect-storage", "--pool", zfs_dataset, "-o", "json"
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["zfs"]["flavour"] == "zfs-fuse"
        assert sorted(doc["zfs"]["prune"]["datasets"]) == sorted(upper)
        assert doc["zfs"]["prune"]["bytes"] == sum(zfs_used(d) for d in upper)
        names = {d["name"] for d in doc["zfs"]["datasets"]}
        assert ct not in names and f"{zfs_dataset}/lxcri/containers/web" in names
        table = invoke("--root", str(cfg.root), "inspect-storage", "--pool", zfs_dataset)
        assert table.exit_code == 0 and "A prune would free" in table.stdout
    finally:
        subprocess.run(["zfs", "destroy", "-r", ct], check=False, capture_output=True)


@pytest.mark.slow
def test_zfs_live_prune_estimate_matches_prune(
    cfg: Config, zfs_dataset: str, store: Store, put_image: Callable[..., str]
) -> None:
    """The estimate equals what prune then frees (and removes)."""
    cfg = cfg.with_overrides(zfs_pool=zfs_dataset)
    be = open_backend(cfg, "zfs")
    multi = put_image(multilayer_image(), "multi:1")
    chain = be.prepare_image(store, multi)
    be.create_rootfs(be.prepare_image(store, put_image(busybox_image(), "base:1")), "web")
    z = storage_report(cfg, zfs_dataset).zfs
    assert z is not None and z.prune.bytes == 0
    # nothing live any more but the container's chain
    from lxcri_core.storage.zfs_inspect import ZfsReader
    from lxcri_core.storage.zfs_tree import prune_estimate

    listing = ZfsReader().datasets(zfs_dataset)
    keep = set(be.refs().containers["web"].chain)
    est = prune_estimate(listing.datasets, keep)
    assert len(est.datasets) == len(chain.keys) - 1 and est.bytes > 0
    result = be.prune(set())
    assert sorted(result.removed) == sorted(chain.keys[1:])
    assert result.freed_bytes == est.bytes


def test_overlay_and_dir_layers(cfg: Config, store: Store, put_image: Callable[..., str]) -> None:
    multi = put_image(multilayer_image(), "multi:1")
    for name in ("overlay", "dir"):
        be = open_backend(cfg, name)
        chain = be.prepare_image(store, multi)
        be.create_rootfs(chain, "c1")
    dirs = storage_report(cfg).dirs
    overlay = [d for d in dirs if d.backend == "overlay" and d.kind == "layer"]
    assert sorted(d.key for d in overlay) == sorted(chain.keys)
    for d in overlay:
        assert d.bytes == disk_usage(Path(d.path) / "diff") > 0
        assert d.containers == ("c1",) and d.images == (multi,)
    [image] = [d for d in dirs if d.backend == "dir" and d.kind == "image"]
    assert image.key == chain.key and image.containers == ("c1",)
    assert image.bytes == disk_usage(Path(image.path))
    assert {(d.backend, d.key) for d in dirs if d.kind == "container"} == {
        ("overlay", "c1"), ("dir", "c1"),
    }  # fmt: skip
    result = invoke("inspect-storage")
    assert result.exit_code == 0, result.stderr
    assert "c1" in result.stdout


def _evil_key(dataset: str, text: str) -> None:
    """A user property value with a newline: what ``zfs get`` prints of it spans lines."""
    subprocess.run(["zfs", "set", f"lxcri:key={text}", dataset], check=True)


@pytest.mark.slow
def test_a_property_value_cannot_forge_datasets_in_the_inspector(
    cfg: Config, zfs_dataset: str, store: Store, put_image: Callable[..., str]
) -> None:
    """A newline in a user property (settable with ``zfs allow``) must not add or change
    datasets in what the inspector shows: it reads no user property at all."""
    cfg = cfg.with_overrides(zfs_pool=zfs_dataset)
    be = open_backend(cfg, "zfs")
    chain = be.prepare_image(store, put_image(busybox_image(), "base:1"))
    layer = f"{zfs_dataset}/lxcri/layers/{chain.key[7:23]}"
    phantom = f"{zfs_dataset}/subvol-999-disk-0"
    _evil_key(
        layer,
        f"{chain.key}\n{phantom}\ttype\tfilesystem\n{phantom}\torigin\t{layer}@layer\n"
        f"{phantom}\tused\t1\n{phantom}\treferenced\t1\n{phantom}\tcompressratio\t1.00x",
    )
    z = storage_report(cfg, zfs_dataset).zfs
    assert z is not None
    assert phantom not in {d.name for d in z.datasets}
    assert [c.container for c in z.tree.clones] == []
    [node] = z.tree.layers
    assert node.key == chain.key  # from lxcri's registry, not from the property


@pytest.mark.slow
def test_a_property_value_cannot_make_prune_destroy_another_dataset(
    cfg: Config, zfs_dataset: str, store: Store, put_image: Callable[..., str]
) -> None:
    """prune reads each layer's ``lxcri:key``: a value with a newline named another
    dataset (with a key no image keeps), and prune ran ``zfs destroy -r`` on it."""
    cfg = cfg.with_overrides(zfs_pool=zfs_dataset)
    be = open_backend(cfg, "zfs")
    digest = put_image(busybox_image(), "base:1")
    chain = be.prepare_image(store, digest)
    victim = f"{zfs_dataset}/victim"
    subprocess.run(["zfs", "create", victim], check=True)
    layer = f"{zfs_dataset}/lxcri/layers/{chain.key[7:23]}"
    _evil_key(layer, f"{chain.key}\n{victim}\tsha256:{'0' * 64}")
    result = be.prune({digest})
    assert result.removed == []
    out = subprocess.run(["zfs", "list", "-H", "-o", "name", victim], capture_output=True)
    assert out.returncode == 0, "prune destroyed a dataset that is no layer"


@pytest.mark.slow
def test_pool_status_with_a_vdev_path_that_is_not_utf8(zfs_fuse: None, tmp_path: Path) -> None:
    """``zpool status`` prints vdev paths as bytes: one not UTF-8 must not end the
    command with a traceback (the shared runner decodes strictly)."""
    from tests.support.zfs import settled

    vdev = os.fsencode(tmp_path) + b"/v\xff\xfe.img"
    with open(vdev, "wb") as f:
        f.truncate(128 << 20)
    name = f"lxcriutf{os.getpid()}"
    subprocess.run(
        [b"zpool", b"create", b"-m", os.fsencode(tmp_path / "mnt"), name.encode(), vdev],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        [st] = ZfsReader().status(name)
        assert st.state == "ONLINE"
        assert any("\ufffd" in d.name for d in st.devices)
        result = invoke("inspect-storage", "--pool", name)
        assert result.exit_code == 0, result.stderr
        assert "ONLINE" in result.stdout
    finally:
        settled(["zpool", "destroy", "-f", name])


@pytest.mark.parametrize("pool", ["-o", "--help", "rpool\n", "rpool/$(touch x)", "r;p"])
def test_a_bad_pool_name_is_one_line_and_runs_nothing(pool: str, tmp_path: Path) -> None:
    result = invoke("inspect-storage", "--pool", pool)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "is not a ZFS pool or dataset name" in result.stderr
    assert result.stdout == ""


def test_without_zfs_the_rest_is_shown(cfg: Config) -> None:
    """No zfs daemon or tool: the ZFS part says why, the rest is still inspected."""
    from lxcri_core.runner import CmdResult

    def down(argv: object, stdin: str | None = None, /) -> CmdResult:
        return CmdResult(1, "", "connect: No such file or directory\n")

    report = storage_report(cfg, reader=ZfsReader(down))
    assert report.zfs is None and "No such file or directory" in report.zfs_error
    with pytest.raises(Exception, match="No such file"):
        storage_report(cfg, "rpool", reader=ZfsReader(down))  # asked for: an error
