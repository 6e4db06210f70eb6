"""The one ``syncfs`` helper (fsutil): storage backends and the unpacker share it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core import fsutil
from lxcri_core.storage import dirs, overlay, zfs
from lxcri_core.unpack import image


def test_every_user_calls_the_same_helper() -> None:
    assert all(vars(m)["syncfs"] is fsutil.syncfs for m in (dirs, overlay, zfs, image))


def test_flushes_a_directory_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    fsutil.syncfs(tmp_path)
    fsutil.syncfs(tmp_path / "f")  # the unpacker's version refused a non-directory


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fsutil.syncfs(tmp_path / "missing")
