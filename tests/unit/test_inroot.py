"""Mount targets resolved inside the rootfs, as the container sees its paths."""

from __future__ import annotations

import os

import pytest

from lxcri_core.containers.inroot import resolve_in_root
from lxcri_core.errors import BackendError


def test_absolute_and_relative_links_resolve_inside(tmp_path):
    root = tmp_path / "r"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    os.symlink("/run", root / "var" / "run")
    os.symlink("../../../../..", root / "up")
    assert resolve_in_root(root, "/var/run/app", create="dir") == "run/app"
    assert (root / "run" / "app").is_dir()
    assert resolve_in_root(root, "/up/etc/hosts", create="file") == "etc/hosts"
    assert (root / "etc" / "hosts").is_file()
    assert not (tmp_path / "etc").exists()


def test_owner_and_modes_of_created_components(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    assert resolve_in_root(root, "/a/b/c", create="dir", owner=100000) == "a/b/c"
    for p in (root / "a", root / "a" / "b", root / "a" / "b" / "c"):
        st = p.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (100000, 100000, 0o755)


def test_errors(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (root / "f").write_text("x")
    os.symlink("l2", root / "l1")
    os.symlink("l1", root / "l2")
    with pytest.raises(BackendError, match="not a directory"):
        resolve_in_root(root, "/f/x", create="dir")
    with pytest.raises(BackendError, match="needs a directory"):
        resolve_in_root(root, "/f", create="dir")
    with pytest.raises(BackendError, match="too many symbolic links"):
        resolve_in_root(root, "/l1/x", create="dir")
    (root / "d").mkdir()
    with pytest.raises(BackendError, match="a file is mounted there"):
        resolve_in_root(root, "/d", create="file")
