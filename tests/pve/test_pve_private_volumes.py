"""pve-local: a CT's volumes are out of reach of other host users.

The image's setuid-root files and v2 file capabilities (kept for a privileged
CT, lxcri_core/unpack/xattrs.py) and an unprivileged CT's setuid/setgid-100000
files sit in the CT's volumes; a local user who could walk there would run
them with host root or the ids shared by every unprivileged CT.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.backend import CreateRequest, CtRef
from lxcri_core.spec.options import RunOptions
from tests.pve.test_pve_local import Env, _setup
from tests.pvesim.fixtures import PveSim, free_port, start_sim
from tests.support.images import Entry, Image, Layer, busybox_entries, make_tar, write_layout
from tests.support.lxcenv import make_dir, wait_for
from tests.unpack.test_xattrs import CAP_SETUID, binary_tar, cap_v2

REF = "localhost/hostile-pve:latest"
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PROG = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int euid = (int)geteuid(), egid = (int)getegid();
    int r = setuid(0);
    printf("ran euid=%d egid=%d setuid=%d uid=%d\n", euid, egid, r, (int)getuid());
    return 0;
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A static program that says which ids it ran with and whether setuid(0) worked."""
    d = tmp_path_factory.mktemp("prog")
    (d / "p.c").write_text(PROG)
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(d / "p"), str(d / "p.c")], check=True)
    return (d / "p").read_bytes()


def hostile_layout(dest: Path, prog: bytes) -> Path:
    """busybox httpd, plus bin/helper (v2 cap_setuid=ep), bin/suid (setuid root) and
    bin/sgid (mode 06755: setuid/setgid 100000 once shifted for an unprivileged CT)."""
    base = [e for e in busybox_entries() if e.path != "www/index.html"]
    base.append(Entry("www/index.html", data=b"hostile but serving\n"))
    extra = binary_tar(
        [
            ("bin/helper", prog, 0o755, {"security.capability": cap_v2(1 << CAP_SETUID)}),
            ("bin/suid", prog, 0o4755, {}),
            ("bin/sgid", prog, 0o6755, {}),
        ]
    )
    cfg = {"Entrypoint": ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], "Env": ["PATH=/bin"]}
    write_layout(dest, Image([Layer(make_tar(base)), Layer(extra)], cfg))
    return dest


def as_nobody(path: Path) -> str:
    """What ``path`` printed when a plain host user ran it ("" if it could not run)."""
    # Through a shell: setpriv keeps root's capabilities until its own exec.
    res = subprocess.run(
        [*AS_NOBODY, "/bin/sh", "-c", 'exec "$0"', str(path)],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=30,
    )
    return res.stdout


def _serves(sim: PveSim, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{sim.gateway}:{port}/", timeout=3) as r:
            return b"hostile but serving" in r.read()
    except OSError:
        return False


def _create(env: Env, name: str, port: int, ip: int, **kw: object) -> int:
    opts = RunOptions(
        name=name,
        publish=(f"{port}:80",),
        ip=f"{env.sim.ip(ip)}/24",
        gateway=env.sim.gateway,
        stop_timeout=1,
        **kw,  # type: ignore[arg-type]
    )
    return env.be.create(CreateRequest(image=REF, options=opts, vmid=env.sim.vmid())).vmid


def _mode(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@pytest.fixture
def hostile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prog: bytes
) -> Iterator[tuple[Env, Path]]:
    sim = start_sim()
    try:
        env = _setup(sim, monkeypatch, tmp_path)
        from lxcri_core.images import import_image

        import_image(env.cfg, hostile_layout(tmp_path / "hostile", prog), REF)
        yield env, sim.dir / "storage/local/images"
    finally:
        sim.close()


@pytest.mark.slow
def test_privileged_ct_on_dir_storage_gives_no_local_user_root(
    hostile: tuple[Env, Path],
) -> None:
    env, images = hostile
    port = free_port()
    vmid = _create(env, "priv", port, 80, privileged=True)
    subvol = images / str(vmid) / f"subvol-{vmid}-disk-0.subvol"
    # the image's capability and setuid bit are there, as the CT's root needs them
    assert os.getxattr(subvol / "bin/helper", "security.capability")
    assert os.stat(subvol / "bin/suid").st_mode & stat.S_ISUID
    for f in ("helper", "suid"):
        assert "ran" not in as_nobody(subvol / "bin" / f), f
    assert _mode(images / str(vmid)) == (0o700, 0, 0)
    env.be.start(CtRef("priv"))
    assert wait_for(lambda: _serves(env.sim, port), what="the privileged CT serving")
    env.be.stop(CtRef("priv"), timeout=0)
    # a CT from before the fix: tightened by its next start
    os.chmod(images / str(vmid), 0o755)
    env.be.start(CtRef("priv"))
    assert _mode(images / str(vmid)) == (0o700, 0, 0)
    assert "ran" not in as_nobody(subvol / "bin/helper")
    assert wait_for(lambda: _serves(env.sim, port), what="the privileged CT serving again")
    env.be.remove(CtRef("priv"), force=True)


@pytest.mark.slow
def test_unprivileged_ct_setgid_file_is_not_runnable_by_a_local_user(
    hostile: tuple[Env, Path],
) -> None:
    env, images = hostile
    port = free_port()
    vmid = _create(env, "unpriv", port, 81, volumes=("data:/data",))
    vdir = images / str(vmid)
    sgid = vdir / f"subvol-{vmid}-disk-0.subvol" / "bin/sgid"
    assert _mode(sgid) == (0o6755, 100000, 100000)  # shifted, bits kept
    assert (vdir / f"subvol-{vmid}-disk-1.subvol").is_dir()  # the mp0 volume pct allocated
    assert "ran" not in as_nobody(sgid)
    assert _mode(vdir) == (0o710, 0, 100000)
    env.be.start(CtRef("unpriv"))  # LXC reaches the rootfs as the mapped root
    assert wait_for(lambda: _serves(env.sim, port), what="the unprivileged CT serving")
    env.be.remove(CtRef("unpriv"), force=True)


@pytest.mark.slow
def test_privileged_ct_on_zfspool_gives_no_local_user_root(
    zfs_dataset: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prog: bytes
) -> None:
    # PVE's pools are mounted below /, every directory on the way passable
    mnt = make_dir() / "zfs"
    subprocess.run(["zfs", "set", f"mountpoint={mnt}", zfs_dataset], check=True)
    sim = start_sim(zfs_pool=zfs_dataset)
    try:
        env = _setup(sim, monkeypatch, tmp_path, LXCRI_PVE_STORAGE="local-zfs")
        from lxcri_core.images import import_image

        import_image(env.cfg, hostile_layout(tmp_path / "hostile", prog), REF)
        port, port2 = free_port(), free_port()
        vmid = _create(env, "zpriv", port, 82, privileged=True)
        root = mnt / f"subvol-{vmid}-disk-0"
        # zfs-fuse stores no xattrs (no capability here), but the setuid bit
        assert os.stat(root / "bin/suid").st_mode & stat.S_ISUID
        for f in ("helper", "suid"):
            assert "ran" not in as_nobody(root / "bin" / f), f
        # the subvols' directory, shared by the pool's CTs: root and the mapped root only
        assert _mode(mnt) == (0o710, 0, 100000)
        # an unprivileged CT on the same pool still starts, and its files are out of reach
        vmid2 = _create(env, "zunpriv", port2, 83)
        assert "ran" not in as_nobody(mnt / f"subvol-{vmid2}-disk-0" / "bin/sgid")
        env.be.start(CtRef("zpriv"))
        env.be.start(CtRef("zunpriv"))
        assert wait_for(lambda: _serves(sim, port), what="the privileged CT on zfs serving")
        assert wait_for(lambda: _serves(sim, port2), what="the unprivileged CT on zfs serving")
        # both stopped first: a running CT's mount namespace, copied from the host's
        # at its start, keeps the other's dataset busy for zfs-fuse
        for name in ("zunpriv", "zpriv"):
            env.be.stop(CtRef(name), timeout=0)
        for name in ("zunpriv", "zpriv"):
            env.be.remove(CtRef(name))
    finally:
        sim.close()
        subprocess.run(["zfs", "inherit", "mountpoint", zfs_dataset], capture_output=True)
        shutil.rmtree(mnt.parent, ignore_errors=True)


def test_pre_start_tightens_by_hand_started_cts(hostile: tuple[Env, Path]) -> None:
    """``pct start`` by hand (PVE's GUI, its boot) runs the hookscript's pre-start too."""
    env, images = hostile
    vmid = _create(env, "byhand", free_port(), 84)
    vdir = images / str(vmid)
    os.chmod(vdir, 0o755)  # as lxcri left it before, or a PVE volume move/restore
    os.chown(vdir, 0, 0)
    assert "ran" in as_nobody(vdir / f"subvol-{vmid}-disk-0.subvol" / "bin/sgid")
    res = env.sim.pct("start", str(vmid))
    assert res.returncode == 0, res.stderr
    assert _mode(vdir) == (0o710, 0, 100000)
    assert "ran" not in as_nobody(vdir / f"subvol-{vmid}-disk-0.subvol" / "bin/sgid")
    env.be.remove(CtRef("byhand"), force=True)
