"""A layer cannot fill the disk: it stops before the target filesystem falls
below its reserve or the layer past max_layer_bytes, and what it wrote is gone;
a SIGTERMed `lxcri unpack` leaves no staging tree either."""

from __future__ import annotations

import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.errors import UnpackError
from lxcri_core.unpack import WriteLimits, unpack_image
from tests.conftest import lxcri_exe
from tests.support.images import Entry, Image, Layer, make_tar
from tests.unpack.helpers import NAME, store_image


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs: the disk a hostile layer tries to fill."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "lxcri-test", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def declared_file(name: str, declared: int, present: int) -> bytes:
    """A tar whose member declares ``declared`` bytes and carries ``present`` of them."""
    ti = tarfile.TarInfo(name)
    ti.size = declared
    return ti.tobuf(tarfile.GNU_FORMAT) + b"\0" * present  # GNU: base-256 sizes past 8 GiB


def test_file_larger_than_the_free_space_is_refused_before_writing(
    tmp_path: Path, small_fs: Path
) -> None:
    """A ~10 KB zstd blob declaring 60 GiB: refused at its header, nothing written."""
    layer = Layer(declared_file("big", 60 << 30, 100 << 20), "zstd")
    assert len(layer.blob()[0]) < 64 << 10
    store = store_image(tmp_path / "store", Image([layer]))
    start = time.monotonic()
    with pytest.raises(UnpackError, match=r"entry 'big' \(another 60\.0 GiB\).*unpack_min_free"):
        unpack_image(store, NAME, small_fs / "rootfs")
    assert time.monotonic() - start < 10
    assert os.listdir(small_fs) == []  # the staging tree is gone too
    st = os.statvfs(small_fs)
    assert st.f_bavail == st.f_blocks  # nothing left behind that takes space


def test_layer_stops_at_the_reserve_and_removes_what_it_wrote(
    tmp_path: Path, small_fs: Path
) -> None:
    """56 MiB of 4 MiB files fit in 64 MiB, but not with 16 MiB kept free."""
    entries = [Entry(f"f{i:02}", data=os.urandom(64) * (1 << 16)) for i in range(14)]
    store = store_image(tmp_path / "store", Image([Layer(make_tar(entries), "zstd")]))
    with pytest.raises(UnpackError, match=r"must keep 16\.0 MiB \(unpack_min_free = 16M\)"):
        unpack_image(store, NAME, small_fs / "rootfs", limits=WriteLimits(min_free="16M"))
    assert os.listdir(small_fs) == []
    # The same layer fits under the default reserve (5 % of 64 MiB).
    unpack_image(store, NAME, small_fs / "rootfs")
    assert len(os.listdir(small_fs / "rootfs")) == 14


def test_max_layer_bytes(tmp_path: Path) -> None:
    entries = [Entry("a", data=b"a" * (600 << 10)), Entry("b", data=b"b" * (600 << 10))]
    store = store_image(tmp_path / "store", Image([Layer(make_tar(entries))]))
    (tmp_path / "out").mkdir()
    with pytest.raises(UnpackError, match=r"entry 'b' .* over max_layer_bytes \(1\.0 MiB\)"):
        unpack_image(store, NAME, tmp_path / "out/rootfs", limits=WriteLimits(max_bytes=1 << 20))
    assert os.listdir(tmp_path / "out") == []
    unpack_image(store, NAME, tmp_path / "out/rootfs", limits=WriteLimits(max_bytes=2 << 20))


def test_sigterm_during_unpack_leaves_no_temporary_files(
    isolated_env: Path, tmp_path: Path
) -> None:
    """A real `lxcri unpack`, killed with SIGTERM in the middle of a big layer."""
    entries = [Entry(f"d{i // 1000}", "dir") for i in range(0, 40_000, 1000)]
    entries += [Entry(f"d{i // 1000}/f{i}", data=b"x" * 2048) for i in range(40_000)]
    store_image(isolated_env / "images", Image([Layer(make_tar(entries), "zstd")]))
    out = tmp_path / "out"
    out.mkdir()
    lxcri = Path(lxcri_exe())
    proc = subprocess.Popen(
        [str(lxcri), "unpack", NAME, str(out / "rootfs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            staging = [p for p in out.iterdir() if p.name.startswith(".rootfs.tmp-")]
            if staging and len(os.listdir(staging[0])) > 10:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the unpack finished before it could be killed"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert os.listdir(out) == []  # neither the staging tree nor a target
    assert proc.returncode != 0
    assert "interrupted" in err, err


def test_unsized_filesystem_is_not_measured(tmp_path: Path) -> None:
    """tmpfs with size=0 reports no blocks: unpacking works, max_layer_bytes still holds."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=0", "lxcri-test", str(mnt)], check=True)
    try:
        if os.statvfs(mnt).f_blocks:
            pytest.skip("this kernel's tmpfs reports a size even with size=0")
        store = store_image(tmp_path / "store", Image([Layer(make_tar([Entry("a", data=b"ab")]))]))
        unpack_image(store, NAME, mnt / "rootfs")
        assert (mnt / "rootfs/a").read_bytes() == b"ab"
        with pytest.raises(UnpackError, match="max_layer_bytes"):
            unpack_image(store, NAME, mnt / "again", limits=WriteLimits(max_bytes=1))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
