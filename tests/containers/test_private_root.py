"""The state root as another local user sees it (docker's CVE-2021-41091).

With a running privileged and unprivileged container of an image holding a
setuid-root binary and a device node, and ``-e SECRET=...``, an unprivileged
host user (nobody) can execute, read, list or write nothing under the root;
a user who has the mapped root's group (100000: what an unprivileged
container needs to reach its rootfs) reaches no secret, no layer, no image
and nothing of the privileged container. Each storage backend is checked,
the zfs one with its pool mounted in a world-traversable place.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.fsutil import is_mountpoint
from lxcri_core.spec.options import RunOptions
from tests.support.images import Entry, Layer, busybox_image, make_tar
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, wait_for

pytestmark = pytest.mark.slow

SECRET = "s3cret-Value-7f3a"
HOSTILE_REF = "localhost/lxt-suid:latest"
NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]
MAPPED_GROUP = ["--reuid=65534", "--regid=100000", "--clear-groups"]

#: Run as the other user: try every path; print what succeeded (JSON lines).
PROBE = r"""
import json, os, stat, subprocess, sys
for line in sys.stdin:
    path, kind, suid = json.loads(line)
    got = []
    try:
        if kind == "dir":
            os.listdir(path)
            got.append("list")
        else:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
            got.append("read")
    except OSError:
        pass
    try:
        if kind == "dir":
            probe = os.path.join(path, ".probe-write")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
        got.append("write")
    except OSError:
        pass
    if suid:
        try:
            out = subprocess.run([path, "id", "-u"], capture_output=True, timeout=5)
            got.append("exec:" + out.stdout.decode().strip())
        except OSError:
            pass
    if got:
        print(json.dumps([path, got]), flush=True)
"""


def hostile_image() -> object:
    """busybox plus a setuid-root busybox and /dev/zero as a 0666 device node."""
    img = busybox_image()
    bb = Path("/bin/busybox").read_bytes()
    img.layers.append(
        Layer(
            make_tar(
                [
                    Entry("opt", "dir", mode=0o755),
                    Entry("opt/suid", "dir", mode=0o755),
                    Entry("opt/suid/busybox", data=bb, mode=0o4755),
                    Entry("opt/zero", "char", mode=0o666, devmajor=1, devminor=5),
                ]
            )
        )
    )
    return img


def walk(top: Path) -> Iterator[tuple[str, str, bool]]:
    """Every path under ``top`` as root sees it: (path, dir|file, setuid)."""
    for dirpath, dirnames, filenames in os.walk(top):
        yield dirpath, "dir", False
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            yield p, "file", bool(st.st_mode & stat.S_ISUID)


def probe_as(ids: list[str], entries: list[tuple[str, str, bool]]) -> dict[str, list[str]]:
    """What the user with ``ids`` (setpriv options) could do to each entry."""
    proc = subprocess.run(
        ["setpriv", *ids, "/usr/bin/python3", "-c", PROBE],
        input="".join(json.dumps(e) + "\n" for e in entries),
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return {p: got for p, got in (json.loads(line) for line in proc.stdout.splitlines())}


@pytest.fixture
def two_containers(lxenv: LxcEnv, storage: str) -> Iterator[tuple[LxcEnv, list[Path]]]:
    lxenv.add_image(hostile_image(), HOSTILE_REF)  # type: ignore[arg-type]
    cfg = lxenv.config()
    for name, privileged in (("priv", True), ("unpriv", False)):
        opts = RunOptions(
            name=name,
            privileged=privileged,
            env=(f"SECRET={SECRET}",),
            volumes=(f"vol-{name}:/data",),
            args=('echo "$SECRET" > /data/seen; sleep 120',),
        )
        engine.create(cfg, HOSTILE_REF, opts, storage=storage)
        engine.start(cfg, name)
        lxenv.remember(name)
        assert engine.status(cfg, name).status == "running"
    tops = [lxenv.root]
    if storage == "zfs":
        # the pool's own mount point is the admin's; lxcri's datasets are below it
        tops.append(lxenv.root.parent / f"{lxenv.root.name}-zfs" / "lxcri")
    yield lxenv, tops


def test_another_user_reaches_nothing_under_the_root(
    two_containers: tuple[LxcEnv, list[Path]], storage: str
) -> None:
    lxenv, tops = two_containers
    # both containers ran with the secret and wrote through their volumes
    for name in ("priv", "unpriv"):
        seen = lxenv.root / "volumes" / f"vol-{name}" / "seen"
        wait_for(seen.exists, what=f"{name} to write its volume")
        assert seen.read_text().strip() == SECRET
    entries = [e for top in tops for e in walk(top)]
    paths = [p for p, _, _ in entries]
    # the tree holds what an attacker wants, so that finding nothing means something
    assert any(p.endswith("/opt/suid/busybox") and suid for p, _, suid in entries)
    assert any(p.endswith("/opt/zero") for p in paths)
    assert any(p.endswith("/ctr/env") for p in paths)
    assert sum(p.startswith(str(lxenv.root / "images" / "blobs")) for p in paths) > 3

    got = probe_as(NOBODY, entries)
    assert got == {}, f"nobody could reach: {sorted(got.items())[:20]}"


def test_the_mapped_group_reaches_only_the_unprivileged_container(
    two_containers: tuple[LxcEnv, list[Path]], storage: str
) -> None:
    lxenv, tops = two_containers
    entries = [e for top in tops for e in walk(top)]
    got = probe_as(MAPPED_GROUP, entries)
    root = str(lxenv.root)
    unpriv = f"{root}/containers/unpriv"
    # what the container itself needs: its rootfs, /.lxcri, /etc files and volume
    allowed = (
        f"{unpriv}/rootfs",
        f"{unpriv}/ctr",
        *(f"{unpriv}/{f}" for f in ("resolv.conf", "hosts", "hostname")),
        f"{unpriv}/volumes",  # its volume, mounted there while it runs
        f"{root}/lib/lxcri-init",  # the shared init shim, bind-mounted read-only
    )
    passages = {root, f"{root}/containers", f"{root}/lib"}
    bad = {
        p: g
        for p, g in got.items()
        if not p.startswith(allowed) and not (p in passages and g == ["list"])
    }
    assert bad == {}, f"the mapped group could reach: {sorted(bad.items())[:20]}"
    # never a secret, never root through a setuid binary
    for p, g in got.items():
        assert not p.endswith(("/config", "/lxcri.json", "/process.json", "/env")), (p, g)
        assert "exec:0" not in g, p
    with pytest.raises(PermissionError):
        _read_as(MAPPED_GROUP, lxenv.state_dir("unpriv") / "ctr" / "env")


def _read_as(ids: list[str], path: Path) -> str:
    proc = subprocess.run(
        ["setpriv", *ids, "/usr/bin/python3", "-c", f"print(open({str(path)!r}).read())"],
        capture_output=True,
        text=True,
    )
    if "PermissionError" in proc.stderr:
        raise PermissionError(path)
    return proc.stdout


def test_an_older_world_traversable_root_is_tightened_on_start(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    opts = RunOptions(name="old", args=("echo hi > /data/hi; sleep 60",), volumes=("oldvol:/data",))
    engine.create(cfg, BUSYBOX_REF, opts, storage="dir")
    sdir = lxenv.state_dir("old")
    # what lxcri 0.1 left: 0755 everywhere, secrets 0644, the rootfs and the
    # volume mounted straight from the layer store and the volumes dir
    rec = json.loads((sdir / "lxcri.json").read_text())
    old_rootfs = str(lxenv.root / "storage" / "dir" / "containers" / rec["id"] / "rootfs")
    text = (sdir / "config").read_text()
    text = text.replace(f"dir:{sdir / 'rootfs'}\n", f"dir:{old_rootfs}\n")
    text = text.replace(f"{sdir}/volumes/0 ", f"{lxenv.root}/volumes/oldvol ")
    (sdir / "config").write_text(text)
    (sdir / "volumes.json").unlink()
    (sdir / "volumes" / "0").rmdir()
    (sdir / "volumes").rmdir()
    rec.update(rootfs=old_rootfs, mount=[])
    (sdir / "lxcri.json").write_text(json.dumps(rec))
    for d in ("", "containers", "containers/old", "storage", "volumes"):
        os.chmod(lxenv.root / d, 0o755)
    for f in ("config", "lxcri.json", "process.json", "ctr/env"):
        os.chown(sdir / f, 0, 0)
        os.chmod(sdir / f, 0o644)
    assert _read_as(NOBODY, sdir / "config")  # the hole, as it was

    engine.start(cfg, "old")
    lxenv.remember("old")
    assert engine.status(cfg, "old").status == "running"
    with pytest.raises(PermissionError):
        _read_as(NOBODY, sdir / "config")
    entries = list(walk(lxenv.root))
    assert probe_as(NOBODY, entries) == {}
    assert stat.S_IMODE(os.stat(lxenv.root / "storage").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(lxenv.root / "volumes").st_mode) == 0o700
    assert (sdir / "ctr" / "env").stat().st_uid == 100000
    hi = lxenv.root / "volumes" / "oldvol" / "hi"
    wait_for(hi.exists, what="the old container to write its volume")


def test_removing_a_running_container_keeps_its_named_volume(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    opts = RunOptions(
        name="rmrun", args=("echo kept > /data/f; sleep 60",), volumes=("keep:/data",)
    )
    engine.create(cfg, BUSYBOX_REF, opts)
    engine.start(cfg, "rmrun")
    lxenv.remember("rmrun")
    f = lxenv.root / "volumes" / "keep" / "f"
    wait_for(f.exists, what="the container to write its volume")
    assert is_mountpoint(lxenv.state_dir("rmrun") / "volumes" / "0")
    engine.remove(cfg, "rmrun", force=True)
    assert f.read_text() == "kept\n"
    assert not lxenv.state_dir("rmrun").exists()
