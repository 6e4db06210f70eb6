"""The mount table reader decodes every octal escape the kernel writes, so a
mount whose path holds a space, tab, newline or backslash is found and undone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import is_mountpoint, mounts, parse_mountinfo

RECORDED = (
    b"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    b"95 22 0:51 / /var/lib/lxcri/a\\012b rw,relatime shared:50 - tmpfs tmpfs rw,size=1024k\n"
    b"96 22 0:52 / /srv/with\\040space\\011tab rw - tmpfs none rw\n"
    b"97 22 0:53 / /srv/back\\134slash\\134040 rw - tmpfs none rw\n"
    b"98 22 0:54 / /srv/ov rw master:3 - overlay overlay "
    b"rw,lowerdir=/l/a\\040b:/l/c\\054d,upperdir=/u,workdir=/w\n"
    b"99 22 0:55 / /srv/\xff\\012 rw - tmpfs none rw\n"
)


def test_recorded_mountinfo_is_decoded() -> None:
    got = parse_mountinfo(RECORDED)
    assert [m[0] for m in got] == [
        "/",
        "/var/lib/lxcri/a\nb",
        "/srv/with space\ttab",
        "/srv/back\\slash\\040",  # an escaped backslash is not the start of another escape
        "/srv/ov",
        "/srv/\udcff\n",  # not UTF-8: the name as os.fsdecode gives it
    ]
    assert got[1][1] == "tmpfs"
    assert got[4][2] == "rw,lowerdir=/l/a b:/l/c,d,upperdir=/u,workdir=/w"


@pytest.fixture
def newline_mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "rootfs\nof a container"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "lxcri-test", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def test_mount_with_a_newline_is_found(newline_mount: Path) -> None:
    assert is_mountpoint(newline_mount)
    assert (str(newline_mount), "tmpfs", "rw,size=1024k") in [
        (p, t, o.split(",inode64")[0]) for p, t, o in mounts()
    ]


def test_rootfs_umount_undoes_a_mount_with_a_newline(newline_mount: Path) -> None:
    from lxcri_core.storage.rootfs import Rootfs

    rootfs = Rootfs("overlay", "c1", "k", newline_mount)
    rootfs.umount(newline_mount)
    assert not is_mountpoint(newline_mount)
    assert b"rootfs\\012of" not in Path("/proc/self/mountinfo").read_bytes()


def test_post_stop_hook_unmounts_a_path_with_a_newline(newline_mount: Path) -> None:
    from lxcri_core.hooks.run import HookLog, _unmount

    _unmount(
        {"mount": ["mount", "x", "/"], "rootfs": str(newline_mount)}, HookLog(Path("/dev/null"))
    )
    assert b"rootfs\\012of" not in Path("/proc/self/mountinfo").read_bytes()


def test_tree_with_a_newline_mount_below_is_not_deleted(newline_mount: Path) -> None:
    from lxcri_core.storage.base import check_not_mounted

    with pytest.raises(StorageError, match="still mounted"):
        check_not_mounted(newline_mount, "container rootfs")
