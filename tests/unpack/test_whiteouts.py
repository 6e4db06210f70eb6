"""Whiteouts and opaque directories, flattened and in overlay form."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.support.images import Entry
from tests.unpack.helpers import apply_entries

LOWER = [
    Entry("d", "dir"),
    Entry("d/gone", data=b"g"),
    Entry("d/stay", data=b"s"),
    Entry("d/sub", "dir"),
    Entry("d/sub/deep", data=b"deep"),
    Entry("o", "dir"),
    Entry("o/old", data=b"old"),
    Entry("o/keepdir", "dir"),
    Entry("o/keepdir/lower", data=b"lower"),
]


def tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(str((Path(dirpath) / n).relative_to(root)))
    return out


def test_whiteout_removes_file_and_directory(tmp_path: Path) -> None:
    apply_entries(LOWER, tmp_path)
    apply_entries([Entry("d/.wh.gone"), Entry("d/.wh.sub"), Entry("d/.wh.absent")], tmp_path)
    assert not (tmp_path / "d/gone").exists()
    assert not (tmp_path / "d/sub").exists()
    assert (tmp_path / "d/stay").read_bytes() == b"s"
    assert not any(".wh." in p for p in tree(tmp_path))


def test_whiteout_spares_entries_of_its_own_layer(tmp_path: Path) -> None:
    apply_entries(LOWER, tmp_path)
    # Replaced in this layer, then (out of order) whited out: the new file survives.
    apply_entries([Entry("d/gone", data=b"new"), Entry("d/.wh.gone")], tmp_path)
    assert (tmp_path / "d/gone").read_bytes() == b"new"


def test_whiteout_then_recreate_as_directory(tmp_path: Path) -> None:
    apply_entries(LOWER, tmp_path)
    apply_entries(
        [Entry("d/.wh.sub"), Entry("d/sub", "dir"), Entry("d/sub/n", data=b"n")], tmp_path
    )
    assert tree(tmp_path / "d/sub") == {"n"}


def test_opaque_directory_hides_lower_keeps_same_layer(tmp_path: Path) -> None:
    apply_entries(LOWER, tmp_path)
    apply_entries(
        [
            Entry("o", "dir"),
            Entry("o/new", data=b"n"),  # before the marker: still kept
            Entry("o/keepdir", "dir"),  # re-listed: its lower content is hidden too
            Entry("o/.wh..wh..opq"),
            Entry("o/later", data=b"l"),
        ],
        tmp_path,
    )
    assert tree(tmp_path / "o") == {"new", "keepdir", "later"}


def test_aufs_metadata_is_ignored(tmp_path: Path) -> None:
    apply_entries(LOWER, tmp_path)
    apply_entries([Entry(".wh..wh.plnk", "dir"), Entry(".wh..wh.aufs")], tmp_path)
    assert ".wh..wh.plnk" not in tree(tmp_path)
    assert (tmp_path / "d/gone").exists()


def test_overlay_form(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    apply_entries(
        [
            Entry("d", "dir"),
            Entry("d/.wh.gone"),
            Entry("o", "dir", mode=0o750),
            Entry("o/.wh..wh..opq"),
            Entry("o/new", data=b"n"),
            Entry("deep/.wh.x"),  # parent not listed: created
        ],
        layer,
        overlay=True,
    )
    wh = os.lstat(layer / "d/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(layer / "deep/x").st_mode)
    assert os.getxattr(layer / "o", "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(os.lstat(layer / "o").st_mode) == 0o750
    assert (layer / "o/new").read_bytes() == b"n"
    assert not any(".wh." in p for p in tree(layer))


def test_overlay_form_mounts_as_expected(tmp_path: Path) -> None:
    """The overlay layer, mounted over its lower layer, shows the flattened view."""
    import subprocess

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    apply_entries(LOWER, lower)
    second = [
        Entry("d", "dir"),
        Entry("d/.wh.gone"),
        Entry("o", "dir"),
        Entry("o/.wh..wh..opq"),
        Entry("o/new", data=b"n"),
    ]
    apply_entries(second, upper, overlay=True)
    flat = tmp_path / "flat"
    apply_entries(LOWER, flat)
    apply_entries(second, flat)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 and "overlay" not in Path("/proc/filesystems").read_text():
        import pytest

        pytest.skip("this kernel has no overlayfs")
    assert r.returncode == 0, f"overlay mount failed: {r.stderr.strip()}"
    try:
        assert tree(mnt) == tree(flat)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
