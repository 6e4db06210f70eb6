"""Overlay specifics: many layers in one mount, choosing the backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core import mountsys
from lxcri_core.config import Config
from lxcri_core.errors import StorageError
from lxcri_core.storage import open_backend
from lxcri_core.storage.dirs import DirBackend
from lxcri_core.storage.overlay import OverlayBackend
from lxcri_core.storage.rootfs import mounts
from lxcri_core.store.layout import Store
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar


def many_layer_image(count: int) -> Image:
    """busybox plus ``count - 1`` layers; layer i writes layers/<i> and whites out i - 1."""
    img = busybox_image()
    for i in range(1, count):
        entries = [
            Entry("layers", "dir", mode=0o755),
            Entry(f"layers/{i:02}", data=f"{i}\n".encode()),
        ]
        if i > 1:
            entries.append(Entry(f"layers/.wh.{i - 1:02}"))  # each layer hides the previous file
        img.layers.append(Layer(make_tar(entries), "none"))
    return img


def twenty_layer_image() -> Image:
    return many_layer_image(20)


def _mounts_all_layers(
    cfg: Config, store: Store, put_image: Callable[..., str], tmp_path: Path, count: int
) -> None:
    be = open_backend(cfg, "overlay")
    chain = be.prepare_image(store, put_image(many_layer_image(count)))
    assert len(chain.layers) == count
    r = be.create_rootfs(chain, "120")
    assert len(r.lowerdirs) == count
    assert r.lowerdirs[0].parent.name == chain.top.short  # top layer first
    top = f"{count - 1:02}"
    target = tmp_path / "root"
    r.mount(target)
    try:
        assert os.listdir(target / "layers") == [top]
        assert (target / "layers" / top).read_text() == f"{count - 1}\n"
        assert (target / "bin" / "busybox").is_file()
        mine = [m for m in mounts() if m[0] == str(target)]
        assert mine and mine[0][1] == "overlay"
        (target / "layers" / "mine").write_text("x")
        assert (r.upperdir / "layers" / "mine").is_file()  # type: ignore[operator]
    finally:
        r.umount(target)
    assert not any(m[0] == str(target) for m in mounts())


def test_twenty_layer_image_mounts(
    cfg: Config, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    _mounts_all_layers(cfg, store, put_image, tmp_path, 20)


def test_48_layer_image_mounts(
    cfg: Config, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    """Past the 255 bytes fsconfig takes per option value (mount(8) of util-linux 2.39+)."""
    _mounts_all_layers(cfg, store, put_image, tmp_path, 48)


def test_remove_unmounts_default_mountpoint(
    cfg: Config, store: Store, put_image: Callable[..., str]
) -> None:
    be = open_backend(cfg, "overlay")
    r = be.create_rootfs(be.prepare_image(store, put_image(busybox_image())), "c1")
    r.mount()
    assert any(m[0] == str(r.path) for m in mounts())
    be.remove_rootfs("c1")
    assert not any(m[0] == str(r.path) for m in mounts())
    assert not r.path.parent.exists()


def test_remove_refuses_while_mounted_elsewhere(
    cfg: Config, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    be = open_backend(cfg, "overlay")
    r = be.create_rootfs(be.prepare_image(store, put_image(busybox_image())), "c1")
    r.mount(tmp_path / "elsewhere")
    try:
        with pytest.raises(StorageError, match="still mounted"):
            be.remove_rootfs("c1")
        assert r.upperdir is not None and r.upperdir.is_dir()
    finally:
        r.umount(tmp_path / "elsewhere")
    be.remove_rootfs("c1")


def _layer_dirs(tmp_path: Path, count: int) -> tuple[list[Path], Path, Path, Path]:
    lowers = []
    for i in range(count):
        d = tmp_path / "layers" / f"{i:016x}" / "diff"
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        lowers.append(d)
    dirs = [tmp_path / n for n in ("u", "w", "m")]
    for d in dirs:
        d.mkdir()
    return lowers, *dirs  # type: ignore[return-value]


def test_mount2_fallback_mounts_more_layers_than_a_page_of_absolute_paths(tmp_path: Path) -> None:
    """Kernels before 6.8 (no lowerdir+): mount(2), lower dirs relative to their parent."""
    lowers, upper, work, target = _layer_dirs(tmp_path, 120)
    assert len(":".join(map(str, lowers))) > os.sysconf("SC_PAGESIZE")
    cwd = os.getcwd()
    mountsys._overlay_mount2([str(p) for p in lowers], str(upper), str(work), str(target))
    try:
        assert os.getcwd() == cwd
        assert sorted(os.listdir(target)) == sorted(f"f{i}" for i in range(120))
    finally:
        mountsys.umount(target)
    assert not any(m[0] == str(target) for m in mounts())


def test_mount2_fallback_too_many_layers_is_a_clear_error(tmp_path: Path) -> None:
    lowers = [str(tmp_path / "layers" / f"{i:016x}" / "diff") for i in range(400)]
    with pytest.raises(StorageError, match=r"more than a page.*use the dir or zfs backend"):
        mountsys._overlay_mount2(lowers, str(tmp_path / "u"), str(tmp_path / "w"), "/m")


def test_more_layers_than_overlay_takes_is_a_clear_error(tmp_path: Path) -> None:
    lowers, upper, work, target = _layer_dirs(tmp_path, 501)  # overlay's limit is 500
    with pytest.raises(StorageError, match=rf"cannot mount an overlay on {target}.*too many"):
        mountsys.overlay(lowers, upper, work, target)
    assert not any(m[0] == str(target) for m in mounts())


def test_mount_errors_name_the_path_and_errno(tmp_path: Path) -> None:
    _, upper, work, target = _layer_dirs(tmp_path, 0)
    missing = tmp_path / "no-such-layer"
    with pytest.raises(StorageError, match=f"{missing}: No such file or directory"):
        mountsys.overlay([missing], upper, work, target)
    with pytest.raises(StorageError, match=f"cannot unmount {target}: Invalid argument"):
        mountsys.umount(target)  # not a mount point


def test_hook_replays_the_recorded_mount(tmp_path: Path) -> None:
    lowers, upper, work, target = _layer_dirs(tmp_path, 48)
    record = mountsys.overlay_record(lowers, upper, work, target)
    mountsys.mount_recorded(record)
    try:
        assert len(os.listdir(target)) == 48
    finally:
        mountsys.umount(target)
    with pytest.raises(StorageError, match="not an overlay or bind mount record"):
        mountsys.mount_recorded(["mount", "-t", "overlay"])


def test_open_backend(cfg: Config) -> None:
    assert isinstance(open_backend(cfg), OverlayBackend)  # auto: this kernel has overlay
    assert isinstance(open_backend(cfg.with_overrides(storage="dir")), DirBackend)
    assert isinstance(open_backend(cfg.with_overrides(storage="dir"), "overlay"), OverlayBackend)
    with pytest.raises(StorageError, match="unknown storage backend 'btrfs'"):
        open_backend(cfg, "btrfs")


def test_a_path_longer_than_fsconfig_takes_mounts_through_mount2(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 200) / ("e" * 100)  # fsconfig takes 255 bytes per value
    lowers, upper, work, target = _layer_dirs(deep, 3)
    assert len(str(lowers[0])) > 255
    mountsys.overlay(lowers, upper, work, target)
    try:
        assert sorted(os.listdir(target)) == ["f0", "f1", "f2"]
    finally:
        mountsys.umount(target)


def test_mount2_refuses_paths_that_would_inject_options(tmp_path: Path) -> None:
    """A path with ',' must not add an option (e.g. another upperdir) to mount(2)'s string."""
    for bad in (f"{tmp_path},upperdir=/etc", f"{tmp_path}/a:b", f"{tmp_path}/a\\,b"):
        with pytest.raises(StorageError, match="',', ':' or"):
            mountsys._overlay_mount2([bad], str(tmp_path / "u"), str(tmp_path / "w"), "/m")


def test_lowerdir_plus_takes_a_path_with_option_characters(tmp_path: Path) -> None:
    """One path per fsconfig value: ',' and ':' in it are only characters."""
    _, upper, work, target = _layer_dirs(tmp_path, 0)
    odd = tmp_path / "a,upperdir=x:b"
    odd.mkdir()
    (odd / "f").write_text("odd")
    mountsys.overlay([odd], upper, work, target)
    try:
        assert (target / "f").read_text() == "odd"
    finally:
        mountsys.umount(target)


def test_the_record_holds_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rec = mountsys.overlay_record([Path("l1"), Path("l0")], Path("u"), Path("w"), Path("m"))
    assert rec == ("overlay", *(str(tmp_path / n) for n in ("m", "u", "w", "l1", "l0")))
