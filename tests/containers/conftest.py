"""Fixtures for the real-container tests: an lxcri root with test images.

Each test gets its own root under /var/tmp/lxcri-tests (world-traversable, as
unprivileged containers need) with the busybox, probe and demo images in the
store; teardown removes its containers and fails the test when a mount, an
nftables chain or a veth of them is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.config import Config
from tests.conftest import run_lxcri
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, PROBE_REF, LxcEnv, new_env, probe_image, sh


def _lxc_missing() -> str:
    for tool in ("lxc-execute", "lxc-create", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run `make deps`)"
    return ""


@pytest.fixture
def lxenv(monkeypatch: pytest.MonkeyPatch) -> Iterator[LxcEnv]:
    missing = _lxc_missing()
    if missing:  # `make deps` installs these; failing loudly is the honest outcome
        pytest.fail(missing)
    env = new_env()
    monkeypatch.setenv("LXCRI_ROOT", str(env.root))
    env.add_image(busybox_image(), BUSYBOX_REF)
    env.add_image(probe_image(), PROBE_REF)
    try:
        yield env
    finally:
        left = env.close()
    assert not left, f"left behind after removing the test's containers: {left}"


@pytest.fixture
def cfg(lxenv: LxcEnv) -> Config:
    return lxenv.config()


class Lxcri:
    """The real ``lxcri`` process against the test's root."""

    def __init__(self, env: LxcEnv) -> None:
        self.env = env

    def __call__(
        self, *args: str, timeout: float = 120, env_extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_lxcri(*args, timeout=timeout, env={**self.env.env, **(env_extra or {})})


@pytest.fixture
def lxcri(lxenv: LxcEnv) -> Lxcri:
    return Lxcri(lxenv)


@pytest.fixture(params=["dir", "overlay", "zfs"])
def storage(request: pytest.FixtureRequest, lxenv: LxcEnv) -> Iterator[str]:
    if request.param != "zfs":
        yield request.param
        return
    dataset = request.getfixturevalue("zfs_dataset")
    # where a Proxmox pool is: a world-traversable mount point (/rpool/data)
    mnt = lxenv.root.parent / f"{lxenv.root.name}-zfs"
    mnt.mkdir(mode=0o755)
    sh("zfs", "set", f"mountpoint={mnt}", dataset, check=True)
    cfgfile = Path(os.environ["LXCRI_CONFIG"])
    with cfgfile.open("a") as f:  # after the suite's own settings (tests/conftest.py)
        f.write(f"zfs_pool: {dataset}\n")
    try:
        yield "zfs"
    finally:
        lxenv.remove_all()  # the datasets go with the fixture: the containers first
