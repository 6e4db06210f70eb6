"""Volumes are seeded from the image, never from the host through a hostile path."""

from __future__ import annotations

import os

import pytest

from lxcri_core.containers.volumes import prepare_volumes
from lxcri_core.errors import SpecError
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.options import RunOptions


def _spec(volumes: dict[str, dict[str, str]]):
    img = {"config": {"Cmd": ["true"], "Volumes": volumes}}
    return build_spec(img, RunOptions(name="v", host_env={}))


def test_image_volume_is_seeded_from_the_image(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    (rootfs / "data" / "seed.txt").write_text("from image")
    paths = prepare_volumes(tmp_path / "root", "c1", _spec({"/data": {}}), rootfs, owner=0)
    assert (paths["/data"] / "seed.txt").read_text() == "from image"


def test_symlinked_volume_path_does_not_copy_host_files(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    os.symlink("/etc", rootfs / "x")
    paths = prepare_volumes(tmp_path / "root", "c1", _spec({"/x/apt": {}}), rootfs, owner=0)
    assert list(paths["/x/apt"].iterdir()) == []


@pytest.mark.parametrize("path", ["/../../../etc/apt", "/a/../../etc", "/"])
def test_image_volume_paths_are_checked_like_flags(path):
    with pytest.raises(SpecError):
        _spec({path: {}})
