"""apply_layer: what a layer's members become on disk."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from lxcri_core.errors import UnpackError
from lxcri_core.unpack import IdMap, apply_layer
from tests.support.images import EPOCH, Entry, make_tar
from tests.unpack.helpers import apply_entries, inode, record

CAP = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


def rich_entries() -> list[Entry]:
    return [
        Entry("bin", "dir", mode=0o755),
        Entry("bin/su", data=b"su", mode=0o4755),
        Entry("bin/sg", data=b"sg", mode=0o2711, gid=42),
        Entry("tmp", "dir", mode=0o1777, mtime=EPOCH + 5),
        Entry("etc", "dir", mode=0o750, uid=7, gid=8, mtime=EPOCH + 9),
        Entry("etc/conf", data=b"x" * 100_000, mode=0o640, uid=33, gid=34, mtime=EPOCH + 1),
        Entry("etc/link", "symlink", link="conf", uid=5, gid=6),
        Entry("etc/hard", "hardlink", link="etc/conf"),
        Entry("bin/ping", data=b"ping", mode=0o755),
        Entry("etc/tagged", data=b"t", xattrs={"user.origin": "lxcri"}),
        Entry("fifo", "fifo", mode=0o600),
        Entry("null", "char", mode=0o666, devmajor=1, devminor=3),
    ]


def test_regular_files_modes_owners_and_mtimes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    stats = apply_entries(rich_entries(), root, "gzip")
    assert stats.files == 12
    assert stats.bytes == 100_000 + 2 + 2 + 4 + 1
    conf = record(root / "etc/conf")
    assert (conf["mode"], conf["uid"], conf["gid"]) == (0o640, 33, 34)
    assert (root / "etc/conf").read_bytes() == b"x" * 100_000
    assert os.lstat(root / "etc/conf").st_mtime == EPOCH + 1
    assert stat.S_IMODE(os.lstat(root / "bin/su").st_mode) == 0o4755
    sg = os.lstat(root / "bin/sg")
    assert (stat.S_IMODE(sg.st_mode), sg.st_gid) == (0o2711, 42)
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    etc = os.lstat(root / "etc")
    # Directory metadata is applied after its children were created.
    assert (stat.S_IMODE(etc.st_mode), etc.st_uid, etc.st_gid) == (0o750, 7, 8)
    assert etc.st_mtime == EPOCH + 9
    assert os.lstat(root / "tmp").st_mtime == EPOCH + 5


def test_links_nodes_and_xattrs(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries(rich_entries(), root)
    link = os.lstat(root / "etc/link")
    assert stat.S_ISLNK(link.st_mode) and os.readlink(root / "etc/link") == "conf"
    assert (link.st_uid, link.st_gid) == (5, 6)
    assert inode(root / "etc/hard") == inode(root / "etc/conf")
    assert stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    null = os.lstat(root / "null")
    assert (
        stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    )
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert os.getxattr(root / "etc/tagged", "user.origin") == b"lxcri"


def test_security_capability_survives_chown(tmp_path: Path) -> None:
    # A PAX header with a binary value, as docker writes file capabilities.
    ti = tarfile.TarInfo("ping")
    ti.size, ti.mode, ti.uid, ti.gid = 4, 0o755, 0, 0
    ti.pax_headers = {"SCHILY.xattr.security.capability": CAP.decode("latin-1")}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.encoding = "latin-1"  # keep the binary value's bytes as they are
        t.addfile(ti, io.BytesIO(b"ping"))
    tar = buf.getvalue()
    assert b"security.capability" in tar
    root = tmp_path / "t"
    apply_entries(tar, root, idmap=IdMap())
    got = os.getxattr(root / "ping", "security.capability")
    # Rewritten as v3, rooted at the id map's base (tests/unpack/test_xattrs.py).
    assert got[:4] == b"\x01\x00\x00\x03" and got[4:8] == CAP[4:8]
    assert got[20:24] == (100000).to_bytes(4, "little")
    assert os.lstat(root / "ping").st_uid == 100000


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_compressions_give_the_same_tree(tmp_path: Path, compression: str) -> None:
    ref, got = tmp_path / "ref", tmp_path / "got"
    apply_entries(rich_entries(), ref, "none")
    stats = apply_entries(rich_entries(), got, compression)
    assert stats.diff_id.startswith("sha256:")
    for p in ("etc/conf", "bin/su", "etc/link", "null", "fifo"):
        assert record(got / p) == record(ref / p)


def test_multi_member_gzip(tmp_path: Path) -> None:
    import gzip

    tar = make_tar([Entry("a", data=b"a" * 5000), Entry("b", data=b"b")])
    blob = gzip.compress(tar[:3000]) + gzip.compress(tar[3000:])
    apply_layer(io.BytesIO(blob), "application/vnd.oci.image.layer.v1.tar+gzip", tmp_path)
    assert (tmp_path / "a").read_bytes() == b"a" * 5000
    assert (tmp_path / "b").read_bytes() == b"b"


def test_gnu_tar_long_names_and_hardlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    deep = src / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_bytes(b"long")
    os.link(deep / ("f" * 150), src / "hl")
    os.symlink("x" * 200, src / "longlink")
    for fmt in ("gnu", "posix"):
        tar = subprocess.run(
            ["tar", f"--format={fmt}", "-C", str(src), "-cf", "-", "."],
            check=True,
            capture_output=True,
        ).stdout
        out = tmp_path / fmt
        apply_entries(tar, out)
        assert (out / ("d" * 120) / ("e" * 120) / ("f" * 150)).read_bytes() == b"long"
        assert inode(out / "hl") == inode(out / ("d" * 120) / ("e" * 120) / ("f" * 150))
        assert os.readlink(out / "longlink") == "x" * 200


def test_idmap_shifts_owners(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries(
        [
            Entry("d", "dir", mode=0o755, uid=0, gid=0),
            Entry("d/f", data=b"f", uid=33, gid=34),
            Entry("d/l", "symlink", link="f", uid=65534, gid=65534),
            Entry("implicit/f", data=b"i"),
        ],
        root,
        idmap=IdMap(200000, 65536),
    )
    assert (os.lstat(root / "d").st_uid, os.lstat(root / "d").st_gid) == (200000, 200000)
    assert (os.lstat(root / "d/f").st_uid, os.lstat(root / "d/f").st_gid) == (200033, 200034)
    assert os.lstat(root / "d/l").st_uid == 265534
    # Parents the tar does not list belong to the container's root.
    assert os.lstat(root / "implicit").st_uid == 200000


def test_idmap_rejects_ids_outside_the_map(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match=r"'f'.*id 70000 is outside"):
        apply_entries([Entry("f", uid=70000)], tmp_path / "t", idmap=IdMap(100000, 65536))


def test_device_nodes_skipped_with_warning_when_unprivileged(tmp_path: Path) -> None:
    from lxcri_core.log import setup_logging

    setup_logging("warning")  # configured first, so capture_logs() stays in effect
    root = tmp_path / "t"
    with capture_logs() as logs:
        stats = apply_entries(
            [
                Entry("dev", "dir"),
                Entry("dev/null", "char", devmajor=1, devminor=3),
                Entry("dev/fifo", "fifo"),
                Entry("dev/null2", "hardlink", link="dev/null"),
            ],
            root,
            idmap=IdMap(),
        )
    assert not os.path.lexists(root / "dev/null")
    assert not os.path.lexists(root / "dev/null2")
    assert stat.S_ISFIFO(os.lstat(root / "dev/fifo").st_mode)  # fifos need no privilege
    assert stats.files == 2
    warned = [e for e in logs if e["log_level"] == "warning" and e.get("entry") == "dev/null"]
    assert warned, logs


def test_wrong_diff_id_fails_the_layer(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match=r"hashes to sha256:.*not its diff_id"):
        apply_entries([Entry("f", data=b"x")], tmp_path / "t", "gzip", diff_id="sha256:" + "0" * 64)


def test_diff_id_covers_bytes_after_the_end_marker(tmp_path: Path) -> None:
    tar = make_tar([Entry("f", data=b"x")]) + b"\0" * 1024
    import hashlib

    stats = apply_entries(tar, tmp_path / "t", diff_id=None)
    assert stats.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()


def test_replacements(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries(
        [
            Entry("a", "dir"),
            Entry("a/x", data=b"x"),
            Entry("b", data=b"b"),
            Entry("keep", data=b"old"),
            Entry("twin", "hardlink", link="keep"),
            Entry("sl", "symlink", link="a"),
        ],
        root,
    )
    apply_entries(
        [
            Entry("a", data=b"now a file"),
            Entry("b", "dir"),
            Entry("b/y", data=b"y"),
            Entry("keep", data=b"new"),
            Entry("sl", "dir"),
            Entry("sl/z", data=b"z"),
        ],
        root,
    )
    assert (root / "a").read_bytes() == b"now a file"
    assert (root / "b/y").read_bytes() == b"y"
    assert (root / "keep").read_bytes() == b"new"
    assert (root / "twin").read_bytes() == b"old"  # replaced by unlink, never truncated
    assert not os.path.islink(root / "sl") and (root / "sl/z").read_bytes() == b"z"


def test_relative_symlinked_parent_inside_target_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries(
        [
            Entry("usr", "dir"),
            Entry("usr/lib", "dir"),
            Entry("lib", "symlink", link="usr/lib"),
            Entry("sub", "dir"),
            Entry("sub/up", "symlink", link="../usr/./lib"),
            Entry("lib/a.so", data=b"a"),
            Entry("sub/up/b.so", data=b"b"),
        ],
        root,
    )
    assert (root / "usr/lib/a.so").read_bytes() == b"a"
    assert (root / "usr/lib/b.so").read_bytes() == b"b"
    assert os.path.islink(root / "lib")


def test_root_entry_sets_root_metadata(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries([Entry("./", "dir", mode=0o700), Entry("./f", data=b"f")], root, idmap=IdMap())
    st = os.lstat(root)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, 100000)
    assert (root / "f").read_bytes() == b"f"


def test_trusted_overlay_xattrs_from_a_layer_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries([Entry("d", "dir", xattrs={"trusted.overlay.opaque": "y"})], root)
    assert "trusted.overlay.opaque" not in os.listxattr(root / "d")


def test_unsupported_media_type(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match="unsupported layer media type"):
        apply_layer(io.BytesIO(b""), "application/x-rar", tmp_path)


def test_missing_target(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match="cannot open the target directory"):
        apply_layer(
            io.BytesIO(make_tar([])), "application/vnd.oci.image.layer.v1.tar", tmp_path / "no"
        )


def test_cached_symlink_parent_replaced_by_directory(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply_entries(
        [
            Entry("real", "dir"),
            Entry("lnk", "symlink", link="real"),
            Entry("lnk/f", data=b"f"),  # caches lnk -> real
            Entry("lnk", "dir"),  # replaces the symlink
            Entry("lnk/g", data=b"g"),
        ],
        root,
    )
    assert (root / "real/f").read_bytes() == b"f"
    assert not os.path.islink(root / "lnk")
    assert sorted(os.listdir(root / "lnk")) == ["g"]
    assert sorted(os.listdir(root / "real")) == ["f"]


def test_many_directories_beyond_the_fd_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxcri_core.unpack import apply as apply_mod

    monkeypatch.setattr(apply_mod, "_fd_cache_limit", lambda: 16)
    entries = []
    for i in range(60):
        entries += [Entry(f"d{i}", "dir", mode=0o700 + i % 8), Entry(f"d{i}/s/f", data=b"%d" % i)]
    entries += [Entry(f"d{i}/s/again", data=b"a") for i in range(60)]
    before = len(os.listdir("/proc/self/fd"))
    apply_entries(entries, tmp_path / "t")
    assert len(os.listdir("/proc/self/fd")) == before  # every fd closed
    for i in range(60):
        d = tmp_path / "t" / f"d{i}"
        assert (d / "s/f").read_bytes() == b"%d" % i and (d / "s/again").exists()
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700 + i % 8


def test_unprivileged_process(tmp_path: Path) -> None:
    """As a plain user: no chown, device nodes skipped, read-only dirs still filled."""
    import shutil
    import sys
    import tempfile

    tar = make_tar(
        [
            Entry("ro", "dir", mode=0o555),
            Entry("ro/f", data=b"x"),
            Entry("null", "char", devmajor=1, devminor=3),
            Entry("su", data=b"s", mode=0o4755),
        ]
    )
    (tmp_path / "layer.tar").write_bytes(tar)
    work = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="lxcri-test-"))
    try:
        shutil.copy(tmp_path / "layer.tar", work / "layer.tar")
        (work / "t").mkdir()
        os.chown(work, 65534, 65534)
        os.chown(work / "t", 65534, 65534)
        code = (
            "import sys; from pathlib import Path; from lxcri_core.unpack import apply_layer; "
            "s = apply_layer(open(sys.argv[1], 'rb'), 'application/vnd.oci.image.layer.v1.tar', "
            "Path(sys.argv[2])); print(s.files)"
        )
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        r = subprocess.run(
            [*as_nobody, sys.executable, "-c", code, str(work / "layer.tar"), str(work / "t")],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "3"
        assert "null" in r.stderr and "skipped" in r.stderr
        assert (work / "t/ro/f").read_bytes() == b"x"
        assert stat.S_IMODE(os.lstat(work / "t/ro").st_mode) == 0o555
        assert stat.S_IMODE(os.lstat(work / "t/su").st_mode) == 0o4755
        assert os.lstat(work / "t/su").st_uid == 65534
    finally:
        shutil.rmtree(work)


def test_many_directories_under_a_low_fd_limit(tmp_path):
    """A layer with more directories than open files allowed still unpacks."""
    import subprocess
    import sys

    from tests.support.images import Entry, make_tar

    tar = make_tar([Entry(f"d{i}/sub", "dir", mode=0o755) for i in range(1500)])
    (tmp_path / "layer.tar").write_bytes(tar)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        "from pathlib import Path\n"
        "from lxcri_core.unpack import apply_layer\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    apply_layer(f, 'application/vnd.oci.image.layer.v1.tar', Path(sys.argv[2]))\n"
    )
    (tmp_path / "out").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "layer.tar"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "out").iterdir())) == 1500
