"""``secure_root`` tightens only a root that is lxcri's: never a shared directory
(``--root /tmp`` would lose /tmp's sticky bit for the whole host) nor a
foreign one. Real directories, the real chown/chmod (tests run as root)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.containers.private import PASSAGE_MODE, ROOT_MARKER, secure_root
from lxcri_core.errors import StoreError
from tests.support.lxcenv import make_dir


@pytest.fixture
def base() -> Iterator[Path]:
    d = make_dir(mode=0o700)
    yield d
    shutil.rmtree(d)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_a_sticky_world_writable_dir_is_refused_untouched(base: Path) -> None:
    shared = base / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (shared / "containers").mkdir()  # a local user planting lxcri's layout changes nothing
    with pytest.raises(StoreError, match=r"refusing lxcri root .*mode 1777"):
        secure_root(shared)
    assert _mode(shared) == 0o1777
    assert os.stat(shared).st_gid == 0
    assert sorted(os.listdir(shared)) == ["containers"]


def test_a_foreign_non_empty_dir_is_refused_untouched(base: Path) -> None:
    home = base / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="holds other files and no lxcri root"):
        secure_root(home)
    assert _mode(home) == 0o755
    assert sorted(os.listdir(home)) == ["notes.txt"]


def test_a_new_root_is_created_marked_and_private(base: Path) -> None:
    root = base / "new" / "root"
    secure_root(root)
    assert _mode(root) == PASSAGE_MODE and (root / ROOT_MARKER).is_file()
    secure_root(root)  # and taken again


def test_an_empty_dir_and_an_older_lxcri_root_are_taken(base: Path) -> None:
    empty = base / "empty"
    empty.mkdir()
    secure_root(empty)
    assert _mode(empty) == PASSAGE_MODE
    old = base / "old"
    (old / "images").mkdir(parents=True)
    (old / "images" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    os.chmod(old, 0o755)
    secure_root(old)
    assert _mode(old) == PASSAGE_MODE and (old / ROOT_MARKER).is_file()


def test_a_root_holding_only_lxcri_entries_is_taken(base: Path) -> None:
    root = base / "netfirst"
    (root / "network").mkdir(parents=True)  # `lxcri network create` before any run
    secure_root(root)
    assert _mode(root) == PASSAGE_MODE and (root / ROOT_MARKER).is_file()
