"""Extended attributes from a hostile layer: file capabilities never grant host
privileges, and only user.*, file capabilities and ACLs are taken at all."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from lxcri_core.unpack import IdMap, unpack_image
from lxcri_core.unpack.xattrs import (
    VFS_CAP_REVISION_1,
    VFS_CAP_REVISION_2,
    VFS_CAP_REVISION_3,
    parse_capability,
)
from tests.support.images import Image, Layer
from tests.unpack.helpers import apply_entries, store_image

CAP_SETUID = 7
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SETUID_PROG = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int r = setuid(0);
    printf("setuid=%d uid=%d\n", r, (int)getuid());
    return r == 0 ? 0 : 1;
}
"""


def cap_v2(permitted: int, effective: bool = True) -> bytes:
    """What docker and `setcap` put in a layer: VFS_CAP_REVISION_2, no root id."""
    magic = VFS_CAP_REVISION_2 | int(effective)
    return struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, 0, permitted >> 32, 0)


@pytest.fixture(autouse=True)
def _logging() -> None:
    from lxcri_core.log import setup_logging

    setup_logging("warning")  # configured first, so capture_logs() stays in effect


def binary_tar(members: list[tuple[str, bytes, int, dict[str, bytes]]]) -> bytes:
    """A PAX tar whose xattr values are raw bytes (as docker writes capabilities).

    Values that are not UTF-8 make tarfile write ``hdrcharset=BINARY`` and the
    bytes as they are (surrogateescape round-trips them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode, xattrs in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, 0, 0, 1_700_000_000
            ti.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def setuid_prog(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A static program that calls setuid(0) and says whether it worked."""
    d = tmp_path_factory.mktemp("prog")
    (d / "s.c").write_text(SETUID_PROG)
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(d / "s"), str(d / "s.c")], check=True)
    return (d / "s").read_bytes()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every host user can traverse (pytest's tmp root is 0700)."""
    work = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="lxcri-test-caps-"))
    os.chmod(work, 0o755)
    try:
        yield work
    finally:
        shutil.rmtree(work)


def run_as_nobody(prog: Path) -> subprocess.CompletedProcess[str]:
    # Through a shell: setpriv keeps root's capabilities until its own exec, so
    # only the shell's exec checks the path as a plain user would.
    return subprocess.run(
        [*AS_NOBODY, "/bin/sh", "-c", 'exec "$0"', str(prog)],
        capture_output=True,
        text=True,
        cwd="/",
    )


def capabilities(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            with contextlib.suppress(OSError):
                out[str(p.relative_to(root))] = os.getxattr(p, "security.capability")
    return out


def cap_image(prog: bytes) -> Image:
    tar = binary_tar(
        [
            ("bin/getroot", prog, 0o755, {"security.capability": cap_v2(1 << CAP_SETUID)}),
            ("bin/plain", prog, 0o755, {}),
        ]
    )
    return Image([Layer(tar, "gzip")])


def test_file_capability_in_unprivileged_image_gives_no_host_privilege(
    tmp_path: Path, public_dir: Path, setuid_prog: bytes
) -> None:
    store = store_image(tmp_path / "store", cap_image(setuid_prog))
    target = public_dir / "rootfs"
    unpack_image(store, "docker.io/library/t:latest", target, idmap=IdMap(100000, 65536))
    r = run_as_nobody(target / "bin/getroot")
    assert "setuid=-1 uid=65534" in r.stdout, (r.stdout, r.stderr)
    assert r.returncode == 1
    # The capability is still there for the container's own root (uid 100000 on the host).
    caps = capabilities(target)
    assert set(caps) == {"bin/getroot"}
    flags, permitted, _inh, rootid = parse_capability(caps["bin/getroot"])
    assert (flags, permitted, rootid) == (1, 1 << CAP_SETUID, 100000)
    assert struct.unpack_from("<I", caps["bin/getroot"])[0] >> 24 == VFS_CAP_REVISION_3 >> 24


def test_no_unpacked_capability_lacks_a_root_id(tmp_path: Path) -> None:
    """v1, v2 and v3 capabilities all come out as v3 with a root id inside the map."""
    v1 = struct.pack("<III", VFS_CAP_REVISION_1 | 1, 1 << CAP_SETUID, 0)
    v3_own_root = struct.pack("<IIIIII", VFS_CAP_REVISION_3 | 1, 1 << 13, 0, 0, 0, 0)
    v3_other = struct.pack("<IIIIII", VFS_CAP_REVISION_3 | 1, 1 << 13, 0, 0, 0, 1000)
    v3_outside = struct.pack("<IIIIII", VFS_CAP_REVISION_3, 1 << 13, 0, 0, 0, 70000)
    bad = b"\x01\x00\x00\x02" + b"\0" * 7
    members = [
        ("v1", b"x", 0o755, {"security.capability": v1}),
        ("v2", b"x", 0o755, {"security.capability": cap_v2(1 << CAP_SETUID)}),
        ("v2-high", b"x", 0o755, {"security.capability": cap_v2(1 << 3 | 1 << 40)}),
        ("v3-own-root", b"x", 0o755, {"security.capability": v3_own_root}),
        ("v3-other", b"x", 0o755, {"security.capability": v3_other}),
        ("v3-outside", b"x", 0o755, {"security.capability": v3_outside}),
        ("malformed", b"x", 0o755, {"security.capability": bad}),
    ]
    root = tmp_path / "t"
    with capture_logs() as logs:
        apply_entries(binary_tar(members), root, idmap=IdMap(100000, 65536))
    caps = capabilities(root)
    assert set(caps) == {"v1", "v2", "v2-high", "v3-own-root", "v3-other"}
    for name, value in caps.items():
        assert len(value) == 24, name
        rootid = parse_capability(value)[3]
        assert rootid is not None and 100000 <= rootid < 165536, (name, rootid)
    assert parse_capability(caps["v2-high"])[1] == 1 << 3 | 1 << 40
    assert parse_capability(caps["v3-other"])[3] == 101000
    skipped = {e["entry"] for e in logs if e.get("event") == "xattr skipped"}
    assert skipped == {"v3-outside", "malformed"}


def test_file_capability_in_privileged_image_stays_effective_for_host_root(
    tmp_path: Path, public_dir: Path, setuid_prog: bytes
) -> None:
    """A privileged container is host root: its capabilities must work in the initial
    namespace, as its setuid-root binaries do. Both are kept from other host users by
    the store's privacy (a 0700 root), not by the unpacker."""
    store = store_image(tmp_path / "store", cap_image(setuid_prog))
    private = public_dir / "private"
    private.mkdir(mode=0o700)
    target = private / "rootfs"
    unpack_image(store, "docker.io/library/t:latest", target)
    flags, permitted, _inh, _rootid = parse_capability(
        os.getxattr(target / "bin/getroot", "security.capability")
    )
    assert (flags, permitted) == (1, 1 << CAP_SETUID)
    r = run_as_nobody(target / "bin/getroot")
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.stdout, r.stderr)


def test_host_policy_xattrs_from_a_layer_are_not_written(tmp_path: Path) -> None:
    xattrs = {
        "trusted.overlay.opaque": b"y",
        "trusted.overlay.redirect": b"/etc",
        "trusted.overlay.metacopy": b"",
        "trusted.lxcri": b"forged",
        "security.selinux": b"system_u:object_r:shadow_t:s0",
        "security.ima": b"\x03\x02\x04",
        "user.note": b"kept",
    }
    members = [("d/f", b"x", 0o644, xattrs), ("g", b"y", 0o644, xattrs)]
    for idmap in (None, IdMap(100000, 65536)):
        root = tmp_path / ("priv" if idmap is None else "unpriv")
        with capture_logs() as logs:
            apply_entries(binary_tar(members), root, idmap=idmap)
        for name in ("d/f", "g"):
            assert os.listxattr(root / name) == ["user.note"], (idmap, name)
            assert os.getxattr(root / name, "user.note") == b"kept"
        skipped = {(e["entry"], e["xattr"]) for e in logs if e.get("event") == "xattr skipped"}
        assert skipped == {(n, k) for n in ("d/f", "g") for k in xattrs if k != "user.note"}


def test_overlay_opaque_whiteout_still_sets_lxcri_s_own_xattr(tmp_path: Path) -> None:
    tar = binary_tar(
        [
            ("d/.wh..wh..opq", b"", 0o644, {}),
            ("e/f", b"x", 0o644, {"trusted.overlay.opaque": b"y"}),
        ]
    )
    root = tmp_path / "layer"
    apply_entries(tar, root, overlay=True)
    assert os.getxattr(root / "d", "trusted.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(root / "e/f")


def _acl(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_posix_acl_ids_are_shifted_like_owners(tmp_path: Path) -> None:
    undefined = 0xFFFFFFFF
    acl = _acl(
        (0x01, 6, undefined),  # ACL_USER_OBJ
        (0x02, 6, 1000),  # ACL_USER 1000
        (0x04, 4, undefined),  # ACL_GROUP_OBJ
        (0x08, 4, 33),  # ACL_GROUP 33
        (0x10, 6, undefined),  # ACL_MASK
        (0x20, 0, undefined),  # ACL_OTHER
    )
    outside = _acl((0x01, 6, undefined), (0x02, 6, 70000), (0x04, 4, undefined))
    members = [
        ("f", b"x", 0o644, {"system.posix_acl_access": acl}),
        ("out", b"x", 0o644, {"system.posix_acl_access": outside}),
    ]
    root = tmp_path / "t"
    apply_entries(binary_tar(members), root, idmap=IdMap(100000, 65536))
    try:
        got = os.getxattr(root / "f", "system.posix_acl_access")
    except OSError as e:
        pytest.skip(f"the test filesystem has no POSIX ACLs: {e.strerror}")
    ids = {
        struct.unpack_from("<HHI", got, off)[0]: struct.unpack_from("<HHI", got, off)[2]
        for off in range(4, len(got), 8)
    }
    assert ids[0x02] == 101000 and ids[0x08] == 100033
    assert "system.posix_acl_access" not in os.listxattr(root / "out")


def test_capability_rewrite_rules() -> None:
    from lxcri_core.unpack.xattrs import Dropped, layer_xattr

    v2 = cap_v2(1 << CAP_SETUID)
    rooted = struct.pack("<IIIIII", VFS_CAP_REVISION_3 | 1, 1 << CAP_SETUID, 0, 0, 0, 100000)
    own_root = struct.pack("<IIIIII", VFS_CAP_REVISION_3 | 1, 1 << CAP_SETUID, 0, 0, 0, 0)
    # privileged: v2 (a v3 rooted at 0 is the same to the kernel); a v3 rooted
    # elsewhere would work in unprivileged containers of that root: dropped
    assert layer_xattr("security.capability", v2, None, True) == v2
    assert layer_xattr("security.capability", own_root, None, True) == v2
    with pytest.raises(Dropped):
        layer_xattr("security.capability", rooted, None, True)
    # unprivileged: always v3 at the map's base
    got = layer_xattr("security.capability", v2, IdMap(200000, 65536), True)
    assert parse_capability(got)[3] == 200000 and len(got) == 24
    # not a regular file: nothing to grant
    with pytest.raises(Dropped):
        layer_xattr("security.capability", v2, IdMap(), False)
    assert layer_xattr("user.x", b"\xff", IdMap(), False) == b"\xff"
    for key in ("trusted.overlay.opaque", "security.selinux", "security.ima", "system.foo"):
        with pytest.raises(Dropped):
            layer_xattr(key, b"y", None, False)
