"""Fixtures for the cluster tests: two zfs-fuse pools (two "nodes"), a store with
test images, and (tests/support/sshnodes.py) network namespaces with their sshd."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.conftest import cfg, put_image, store  # noqa: F401 - fixtures
from tests.support.sshnodes import ssh_lab  # noqa: F401 - fixture
from tests.support.zfs import settled

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def zfs_pool_b(zfs_fuse: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second file-backed pool on the one zfs-fuse daemon: the other node's."""
    d = tmp_path_factory.mktemp("zpool-b")
    vdev = d / "vdev.img"
    with open(vdev, "wb") as f:
        f.truncate(512 << 20)
    name = f"lxcritestb{os.getpid()}"
    subprocess.run(
        ["zpool", "create", "-m", str(d / "mnt"), name, str(vdev)], check=True, capture_output=True
    )
    try:
        yield name
    finally:
        settled(["zpool", "destroy", "-f", name])


@pytest.fixture
def scratch_pool(zfs_fuse: None, tmp_path: Path) -> Iterator[str]:
    """A pool of the test's own, destroyed with ``-f`` at the end.

    For the kill -9 tests: zfs-fuse keeps a hold on a snapshot whose
    ``zfs send`` client was killed mid-stream (``destroy`` says "dataset is
    busy" until the daemon restarts), which a dataset of the shared session
    pool could not shed.
    """
    vdev = tmp_path / "scratch.img"
    with open(vdev, "wb") as f:
        f.truncate(512 << 20)
    name = f"lxcritests{os.getpid()}x{next(_counter)}"
    subprocess.run(
        ["zpool", "create", "-m", str(tmp_path / "scratch"), name, str(vdev)],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        settled(["zpool", "destroy", "-f", name])


@pytest.fixture
def dataset_b(zfs_pool_b: str) -> Iterator[str]:
    """A fresh dataset of the second pool per test (node B's ``zfs_pool``)."""
    name = f"{zfs_pool_b}/t{next(_counter)}"
    subprocess.run(["zfs", "create", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        settled(["zfs", "destroy", "-R", name])
