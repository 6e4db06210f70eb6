"""Correctness peer: lxcri unpack writes the same tree as ``umoci unpack``."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from lxcri_core.unpack import IdMap, unpack_image
from tests.support.images import (
    Entry,
    Image,
    Layer,
    busybox_entries,
    busybox_image,
    make_tar,
    multilayer_image,
    write_layout,
)
from tests.unpack.helpers import snapshot, store_image

# cap_net_raw+ep as a v2 security.capability value (binary, carried in a PAX header).
CAP = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x20\x00\x00" + "\x00" * 8


def rich_image() -> Image:
    """Owners, special modes, xattrs, nodes, links, whiteouts, opaque dirs, replacements."""
    l1 = make_tar(
        [
            *busybox_entries(),
            Entry("usr", "dir", mode=0o755),
            Entry("usr/bin", "dir", mode=0o755),
            Entry("usr/bin/su", data=b"su", mode=0o4755),
            Entry("usr/bin/wall", data=b"wall", mode=0o2755, gid=5),
            Entry("usr/bin/ping", data=b"ping", mode=0o755, xattrs={"security.capability": CAP}),
            Entry("usr/bin/tagged", data=b"t", xattrs={"user.lxcri": "kept"}),
            Entry("usr/lib", "dir", mode=0o755),
            Entry("lib", "symlink", link="usr/lib"),
            Entry("srv", "dir", mode=0o750, uid=1000, gid=1000),
            Entry("srv/data", data=b"d" * 70_000, mode=0o600, uid=1000, gid=1000),
            Entry("srv/hl", "hardlink", link="srv/data"),
            Entry("srv/tagged", data=b"t", xattrs={"user.lxcri": "yes"}),
            Entry("dev", "dir", mode=0o755),
            Entry("dev/null", "char", mode=0o666, devmajor=1, devminor=3),
            Entry("dev/fifo", "fifo", mode=0o620),
            Entry("opt", "dir"),
            Entry("opt/a", "dir"),
            Entry("opt/a/one", data=b"1"),
            Entry("opt/a/two", data=b"2"),
            Entry("opt/file-then-dir", data=b"f"),
            Entry("opt/dir-then-file", "dir"),
            Entry("opt/dir-then-file/x", data=b"x"),
        ]
    )
    l2 = make_tar(
        [
            Entry("opt", "dir"),
            Entry("opt/a", "dir"),
            Entry("opt/a/.wh..wh..opq"),
            Entry("opt/a/three", data=b"3"),
            Entry("opt/file-then-dir", "dir", mode=0o711),
            Entry("opt/file-then-dir/in", data=b"in"),
            Entry("opt/dir-then-file", data=b"now a file", mode=0o640, uid=33),
            Entry("srv", "dir", mode=0o750, uid=1000, gid=1000),
            Entry("srv/.wh.tagged"),
            Entry("srv/data", data=b"replaced", mode=0o644, uid=1000, gid=1000),
            Entry("usr/lib/libx.so", data=b"ELF", mode=0o755),
            Entry("bin", "dir", mode=0o755),
            Entry("bin/.wh.wget"),
        ]
    )
    img = busybox_image()
    img.layers = [Layer(l1), Layer(l2, "none")]
    return img


IMAGES = {"busybox": busybox_image, "multilayer": multilayer_image, "rich": rich_image}


def umoci_rootfs(layout: Path, bundle: Path, idmap: IdMap | None) -> Path:
    cmd = ["umoci", "unpack", "--image", f"{layout}:t"]
    if idmap:
        m = f"{idmap.start}:{idmap.host}:{idmap.count}"
        cmd += ["--uid-map", m, "--gid-map", m]
    subprocess.run([*cmd, str(bundle)], check=True, capture_output=True)
    return bundle / "rootfs"


@pytest.mark.slow
@pytest.mark.parametrize("idmap", [None, IdMap()], ids=["privileged", "unprivileged"])
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_same_tree_as_umoci(tmp_path: Path, name: str, idmap: IdMap | None) -> None:
    img = IMAGES[name]()
    write_layout(tmp_path / "layout", img, "t")
    theirs = snapshot(umoci_rootfs(tmp_path / "layout", tmp_path / "bundle", idmap))
    store = store_image(tmp_path / "store", img)
    unpack_image(store, "t", tmp_path / "rootfs", idmap=idmap)
    ours = snapshot(tmp_path / "rootfs")
    if idmap is not None:
        # By design device nodes are skipped for unprivileged targets (umoci makes them).
        theirs = {p: r for p, r in theirs.items() if not stat.S_ISCHR(r["type"] | 0o777)}
        assert "dev/null" not in ours
    assert sorted(ours) == sorted(theirs)
    if idmap is not None and name == "rich":
        # By design file capabilities become v3 rooted at the map's base
        # (tests/unpack/test_xattrs.py); umoci copies the v2 value, which
        # grants the capability on the host.
        cap = ours["usr/bin/ping"]["xattrs"].pop("security.capability")
        assert cap[:4] == b"\x01\x00\x00\x03" and cap[20:] == idmap.host.to_bytes(4, "little")
        theirs["usr/bin/ping"]["xattrs"].pop("security.capability")
    diffs = {p: (ours[p], theirs[p]) for p in ours if ours[p] != theirs[p]}
    assert not diffs
    if name == "rich":
        assert "opt/a/one" not in ours and "srv/tagged" not in ours  # the image did delete
        assert ours["usr/bin/tagged"]["xattrs"] == {"user.lxcri": b"kept"}
        if idmap is None:
            assert "security.capability" in ours["usr/bin/ping"]["xattrs"]


def gnu_tar(paths: list[str]) -> bytes:
    cmd = ["tar", "-C", "/", "--format=pax", "--numeric-owner", "--sort=name", "-cf", "-"]
    return subprocess.run([*cmd, *paths], check=True, capture_output=True).stdout


@pytest.mark.slow
def test_same_tree_as_umoci_for_a_real_tree(tmp_path: Path) -> None:
    """Layers GNU tar wrote from this machine's /usr (links, long names, PAX)."""
    zones = sorted(p.name for p in Path("/usr/share/zoneinfo").iterdir())
    top = make_tar(
        [
            Entry("usr", "dir", mode=0o755),
            Entry("usr/share", "dir", mode=0o755),
            Entry("usr/share/zoneinfo", "dir", mode=0o755),
            *[Entry(f"usr/share/zoneinfo/.wh.{z}") for z in zones[::5]],
            Entry("usr/share/perl", "dir", mode=0o755),
            Entry("usr/share/perl/.wh..wh..opq"),
            Entry("usr/share/perl/README", data=b"perl was removed\n"),
        ]
    )
    img = Image(
        [
            Layer(gnu_tar(["usr/share/zoneinfo", "usr/share/perl"])),
            Layer(gnu_tar(["usr/share/mime"]), "none"),
            Layer(top),
        ]
    )
    write_layout(tmp_path / "layout", img, "t")
    theirs = snapshot(umoci_rootfs(tmp_path / "layout", tmp_path / "bundle", None))
    store = store_image(tmp_path / "store", img)
    unpack_image(store, "t", tmp_path / "rootfs")
    ours = snapshot(tmp_path / "rootfs")
    assert len(ours) > 1000
    assert sorted(ours) == sorted(theirs)
    assert {p for p in ours if ours[p] != theirs[p]} == set()
