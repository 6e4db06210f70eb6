"""Overlay specifics: many layers in one mount, choosing the backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.errors import StorageError
from lxcri_core.storage import Rootfs, open_backend
from lxcri_core.storage.dirs import DirBackend
from lxcri_core.storage.overlay import OverlayBackend
from lxcri_core.storage.rootfs import mounts
from lxcri_core.store.layout import Store
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar


def twenty_layer_image() -> Image:
    img = busybox_image()
    for i in range(1, 20):
        entries = [
            Entry("layers", "dir", mode=0o755),
            Entry(f"layers/{i:02}", data=f"{i}\n".encode()),
        ]
        if i > 1:
            entries.append(Entry(f"layers/.wh.{i - 1:02}"))  # each layer hides the previous file
        img.layers.append(Layer(make_tar(entries), "none"))
    return img


def test_twenty_layer_image_mounts(
    cfg: Config, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    be = open_backend(cfg, "overlay")
    chain = be.prepare_image(store, put_image(twenty_layer_image()))
    assert len(chain.layers) == 20
    r = be.create_rootfs(chain, "120")
    assert len(r.lowerdirs) == 20
    assert r.lowerdirs[0].parent.name == chain.top.short  # top layer first
    opts, base = r.overlay_options()
    assert base == be.state / "layers"
    assert f"lowerdir={chain.top.short}/diff:" in opts  # relative: short option string
    target = tmp_path / "root"
    r.mount(target)
    try:
        assert os.listdir(target / "layers") == ["19"]
        assert (target / "layers" / "19").read_text() == "19\n"
        assert (target / "bin" / "busybox").is_file()
        mine = [m for m in mounts() if m[0] == str(target)]
        assert mine and mine[0][1] == "overlay"
        (target / "layers" / "mine").write_text("x")
        assert (r.upperdir / "layers" / "mine").is_file()  # type: ignore[operator]
    finally:
        r.umount(target)
    assert not any(m[0] == str(target) for m in mounts())


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


def test_too_many_layers_is_a_clear_error(tmp_path: Path) -> None:
    lowers = tuple(tmp_path / "layers" / f"{i:016x}" / "diff" for i in range(400))
    r = Rootfs("overlay", "big", "k", tmp_path / "m", lowers, tmp_path / "u", tmp_path / "w")
    with pytest.raises(StorageError, match="too many layers"):
        r.overlay_options()


def test_open_backend(cfg: Config) -> None:
    assert isinstance(open_backend(cfg), OverlayBackend)  # auto: this kernel has overlay
    assert isinstance(open_backend(cfg.with_overrides(storage="dir")), DirBackend)
    assert isinstance(open_backend(cfg.with_overrides(storage="dir"), "overlay"), OverlayBackend)
    with pytest.raises(StorageError, match="unknown storage backend 'btrfs'"):
        open_backend(cfg, "btrfs")
