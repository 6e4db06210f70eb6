"""Hostile layers: each fails with an UnpackError naming the entry, writes nothing
outside the target, and leaves no partial root filesystem behind."""

from __future__ import annotations

import gzip
import io
import itertools
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core.errors import UnpackError
from lxcri_core.unpack import apply_layer, unpack_image
from tests.support.images import Entry, Image, Layer, make_tar
from tests.unpack.helpers import apply_entries, snapshot, store_image

OUTSIDE = "outside"  # a directory beside the work dir, holding a "secret"


def base_layer() -> Layer:
    return Layer(make_tar([Entry("etc", "dir"), Entry("etc/passwd", data=b"root:x:0:0::/:\n")]))


def raw_header(name: str, size: int, body: bytes = b"") -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(tarfile.GNU_FORMAT) + body  # GNU: base-256 sizes beyond 8 GiB


def case_tars(tmp: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (layer tar, text the error must contain)."""
    out = str(tmp / OUTSIDE)
    big_pax = tarfile.TarInfo("p")
    big_pax.pax_headers = {"comment": "x" * (2 << 20)}
    return {
        "absolute": (make_tar([Entry(f"{out}/abs", data=b"x")]), f"'{out}/abs'"),
        "absolute-etc": (make_tar([Entry("/etc/x", data=b"x")]), "'/etc/x'"),
        "dotdot": (make_tar([Entry("../x", data=b"x")]), "'../x'"),
        "dotdot-inner": (make_tar([Entry("a/../../x", data=b"x")]), "'a/../../x'"),
        "symlink-dotdot-parent": (
            make_tar([Entry("evil", "symlink", link="../../.."), Entry("evil/file", data=b"x")]),
            "'evil/file'",
        ),
        "symlink-deep-escape": (
            make_tar(
                [
                    Entry("a", "dir"),
                    Entry("a/b", "dir"),
                    Entry("a/b/up", "symlink", link="../../../x"),
                    Entry("a/b/up/file", data=b"x"),
                ]
            ),
            "'a/b/up/file'",
        ),
        "symlink-chain-escape": (
            make_tar(
                [
                    Entry("one", "symlink", link="two/.."),
                    Entry("two", "symlink", link=".."),
                    Entry("one/file", data=b"x"),
                ]
            ),
            "'one/file'",
        ),
        "symlink-loop": (
            make_tar(
                [
                    Entry("l1", "symlink", link="l2"),
                    Entry("l2", "symlink", link="l1"),
                    Entry("l1/file", data=b"x"),
                ]
            ),
            "'l1/file'",
        ),
        "hardlink-dotdot": (
            make_tar([Entry("h", "hardlink", link="../../etc/passwd")]),
            "'../../etc/passwd'",
        ),
        "hardlink-absolute": (
            make_tar([Entry("h", "hardlink", link=f"{out}/secret")]),
            f"'{out}/secret'",
        ),
        "hardlink-via-symlink": (
            make_tar(
                [Entry("evil", "symlink", link=out), Entry("h", "hardlink", link="evil/secret")]
            ),
            "'h'",
        ),
        "hardlink-missing": (make_tar([Entry("h", "hardlink", link="nope")]), "'h'"),
        "whiteout-dotdot": (make_tar([Entry("../.wh.x")]), "'../.wh.x'"),
        "whiteout-names-dotdot": (make_tar([Entry("etc/.wh...")]), "'etc/.wh...'"),
        "whiteout-via-symlink": (
            make_tar([Entry("evil", "symlink", link="../../.."), Entry("evil/.wh.secret")]),
            "'evil/.wh.secret'",
        ),
        "parent-is-file": (
            make_tar([Entry("f", data=b"x"), Entry("f/g", data=b"y")]),
            "'f/g'",
        ),
        "truncated-data": (make_tar([Entry("big", data=b"x" * 10_000)])[:4096], "truncated"),
        "huge-size": (raw_header("huge", 10 << 30, b"x" * 1024), "truncated"),
        "truncated-header": (make_tar([Entry("f", data=b"x")])[:700], "truncated"),
        "bad-checksum": (b"garbage!" * 64 + b"\0" * 1024, "bad checksum"),
        "huge-pax": (big_pax.tobuf(tarfile.PAX_FORMAT), "too large"),
        "sparse": (_sparse_tar(), "unsupported tar type"),
    }


def _sparse_tar() -> bytes:
    ti = tarfile.TarInfo("sparse")
    ti.type = tarfile.GNUTYPE_SPARSE
    return ti.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024


CASES = sorted(case_tars(Path("/x")))


def world(tmp_path: Path) -> dict[str, dict[str, object]]:
    """Everything in tmp_path except the store (whose lock files may come and go)."""
    snap = snapshot(tmp_path)
    return {k: v for k, v in snap.items() if not k.startswith(("store", "lxcri-root", "home"))}


@pytest.fixture
def setup(tmp_path: Path) -> Callable[[str], tuple[bytes, str]]:
    (tmp_path / OUTSIDE).mkdir()
    (tmp_path / OUTSIDE / "secret").write_text("secret\n")
    (tmp_path / "work").mkdir()

    def get(case: str) -> tuple[bytes, str]:
        return case_tars(tmp_path)[case]

    return get


@pytest.mark.parametrize("case", CASES)
def test_hostile_layer_fails_atomically(
    tmp_path: Path, setup: Callable[[str], tuple[bytes, str]], case: str
) -> None:
    tar, needle = setup(case)
    if case.startswith("absolute"):
        assert needle.strip("'").encode() in tar  # the writer kept the leading slash
    store = store_image(tmp_path / "store", Image([base_layer(), Layer(tar)]))
    before = world(tmp_path)
    target = tmp_path / "work" / "rootfs"
    with pytest.raises(UnpackError) as err:
        unpack_image(store, "t", target)
    assert needle in str(err.value), str(err.value)
    assert not os.path.lexists(target)
    assert os.listdir(tmp_path / "work") == []  # the staging dir is gone too
    assert world(tmp_path) == before
    assert not os.path.lexists("/etc/x")


def test_hostile_gzip_truncated(tmp_path: Path) -> None:
    blob = gzip.compress(make_tar([Entry("f", data=os.urandom(200_000))]))[:50_000]
    with pytest.raises(UnpackError, match="truncated"):
        apply_layer(io.BytesIO(blob), "application/vnd.oci.image.layer.v1.tar+gzip", tmp_path)


def test_hostile_gzip_garbage(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match="corrupt gzip"):
        apply_layer(
            io.BytesIO(b"\x1f\x8b\x08\x00garbage" * 10),
            "application/vnd.oci.image.layer.v1.tar+gzip",
            tmp_path,
        )


def test_decompression_bomb_is_streamed(tmp_path: Path) -> None:
    # 256 MiB of zeros compresses to ~250 kB; a member claiming it is written as a
    # stream (bounded memory) and the layer then fails its diff_id.
    ti = tarfile.TarInfo("bomb")
    ti.size = 1 << 28
    hdr = ti.tobuf(tarfile.USTAR_FORMAT)
    comp = gzip.compress(hdr + b"\0" * (1 << 28) + b"\0" * 1024, compresslevel=1)
    stats = apply_layer(io.BytesIO(comp), "application/vnd.oci.image.layer.v1.tar+gzip", tmp_path)
    assert stats.bytes == 1 << 28
    (tmp_path / "x").mkdir()
    with pytest.raises(UnpackError, match="not its diff_id"):
        apply_layer(
            io.BytesIO(comp),
            "application/vnd.oci.image.layer.v1.tar+gzip",
            tmp_path / "x",
            diff_id="sha256:" + "1" * 64,
        )


def test_device_node_in_unprivileged_image_is_not_an_error(tmp_path: Path) -> None:
    from lxcri_core.unpack import IdMap

    stats = apply_entries(
        [Entry("dev", "dir"), Entry("dev/sda", "char", devmajor=8, devminor=0)],
        tmp_path / "t",
        idmap=IdMap(),
    )
    assert stats.files == 1
    assert os.listdir(tmp_path / "t/dev") == []


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("overlay", [False, True], ids=["flatten", "overlay"])
def test_hostile_layer_direct(
    tmp_path: Path, setup: Callable[[str], tuple[bytes, str]], case: str, overlay: bool
) -> None:
    """apply_layer itself (as the storage backends call it) refuses the same layers."""
    tar, needle = setup(case)
    target = tmp_path / "work" / "layer"
    target.mkdir()
    before = {k: v for k, v in world(tmp_path).items() if not k.startswith("work/layer")}
    with pytest.raises(UnpackError) as err:
        apply_entries(tar, target, "gzip", overlay=overlay)
    assert needle in str(err.value), str(err.value)
    after = {k: v for k, v in world(tmp_path).items() if not k.startswith("work/layer")}
    assert after == before


def test_absolute_symlink_parent_resolves_inside_the_target(
    tmp_path: Path, setup: Callable[[str], tuple[bytes, str]]
) -> None:
    """``evil -> /abs/outside`` then ``evil/file``: the container's /abs/outside, not the host's."""
    out = str(tmp_path / OUTSIDE)
    tar = make_tar(
        [
            Entry("evil", "symlink", link=out),
            Entry("evil/file", data=b"x"),
            Entry("up", "symlink", link="/../../etc"),
            Entry("up/y", data=b"y"),
        ]
    )
    store = store_image(tmp_path / "store", Image([base_layer(), Layer(tar)]))
    before = world(tmp_path)
    target = tmp_path / "work" / "rootfs"
    unpack_image(store, "t", target)
    assert (target / out.lstrip("/") / "file").read_bytes() == b"x"
    assert (target / "etc" / "y").read_bytes() == b"y"
    assert os.readlink(target / "evil") == out  # the link itself is kept as written
    after = {k: v for k, v in world(tmp_path).items() if not k.startswith("work")}
    assert after == {k: v for k, v in before.items() if not k.startswith("work")}
    assert not (tmp_path / OUTSIDE / "file").exists()


def _members_ending_in_the_tail(count: int) -> tuple[bytes, bytes]:
    """(tar, gzip blob): one member per file of OUT_SIZE+ zeros, so each member
    inflates past the output limit and ends while its input is in unconsumed_tail."""
    from lxcri_core.unpack.stream import OUT_SIZE

    tar = make_tar([Entry(f"f{i}", data=b"\0" * (OUT_SIZE + 4096)) for i in range(count)])
    step = len(tar) // count
    cuts = [i * step for i in range(count)] + [len(tar)]
    blob = b"".join(gzip.compress(tar[a:b]) for a, b in itertools.pairwise(cuts))
    return tar, blob


@pytest.mark.timeout(60)
@pytest.mark.parametrize("members", [2, 6])
def test_gzip_member_ending_in_the_unconsumed_tail(tmp_path: Path, members: int) -> None:
    """A ~9 KB two-member layer used to inflate without end (each member fed twice)."""
    tar, blob = _members_ending_in_the_tail(members)
    assert len(blob) < 5000 * members  # a few KB per member
    target = tmp_path / "t"
    target.mkdir()
    stats = apply_layer(
        io.BytesIO(blob),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        target,
        diff_id=Layer(tar).diff_id,
    )
    assert stats.files == members
    assert sorted(os.listdir(target)) == [f"f{i}" for i in range(members)]
