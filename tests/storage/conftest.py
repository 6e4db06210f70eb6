"""Fixtures for the storage backend tests: a store with test images, a config,
backends on real overlayfs and a real zfs-fuse pool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcri_core.config import Config, load_config
from lxcri_core.media import Descriptor
from lxcri_core.storage import StorageBackend, open_backend
from lxcri_core.store.layout import Store
from tests.support.images import Image, build


@pytest.fixture
def cfg(isolated_env: Path) -> Config:
    return load_config()


@pytest.fixture
def store(cfg: Config) -> Store:
    return Store(cfg.image_store).init()


@pytest.fixture
def put_image(store: Store) -> Callable[[Image, str], str]:
    """Store a test image under ``name``; return its manifest digest."""

    def put(img: Image, name: str = "test/img:latest") -> str:
        built = build(img)
        for digest, data in built.blobs.items():
            store.put_bytes(data, digest)
        store.tag(name, Descriptor(built.media_type, built.manifest_digest, built.manifest_size))
        return built.manifest_digest

    return put


@pytest.fixture(params=["dir", "overlay", pytest.param("zfs", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, cfg: Config) -> Iterator[StorageBackend]:
    """Each backend in turn; zfs on a fresh dataset of the zfs-fuse test pool."""
    if request.param == "zfs":
        ds = request.getfixturevalue("zfs_dataset")
        cfg = cfg.with_overrides(zfs_pool=ds)
    be = open_backend(cfg, request.param)
    yield be
    unmount_below(cfg.root)


def unmount_below(root: Path) -> None:
    """Unmount whatever a failed test left mounted under ``root`` (deepest first)."""
    from lxcri_core.storage.rootfs import mounts

    prefix = str(root.resolve()) + "/"
    for point in sorted((m[0] for m in mounts() if m[0].startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
