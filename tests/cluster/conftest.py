"""Fixtures for the cluster tests: two zfs-fuse pools (two "nodes"), a store with
test images, and (tests/support/sshnodes.py) network namespaces with their sshd."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _scratch(tmp_path: Path, tag: str) -> Iterator[str]:
    vdev = tmp_path / f"scratch-{tag}.img"
    with open(vdev, "wb") as f:
        f.truncate(512 << 20)
    name = f"lxcritests{os.getpid()}x{next(_counter)}"
    subprocess.run(
        ["zpool", "create", "-m", str(tmp_path / f"scratch-{tag}"), name, str(vdev)],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        settled(["zpool", "destroy", "-f", name])


@pytest.fixture
def scratch_pool(zfs_fuse: None, tmp_path: Path) -> Iterator[str]:
    """A pool of the test's own, destroyed with ``-f`` at the end.

    zfs-fuse keeps a hold on a snapshot whose ``zfs send`` client was killed
    mid-stream, and now and then on one a finished send used (``destroy`` says
    "dataset is busy" until the daemon restarts), which a dataset of the shared
    session pool could not shed: every test that sends uses pools of its own.
    """
    with _scratch(tmp_path, "a") as name:
        yield name


@pytest.fixture
def scratch_pool_b(zfs_fuse: None, tmp_path: Path) -> Iterator[str]:
    """A second pool of the test's own: the receiving node's."""
    with _scratch(tmp_path, "b") as name:
        yield name
