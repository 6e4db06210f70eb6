"""`lxcri cp` in and out of real containers, running and stopped, and a hostile
image whose symbolic links point at host files: cp must never read or write them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.containers.record import load_record
from tests.containers.conftest import Lxcri
from tests.support.images import Entry, Layer, busybox_image, make_tar
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow

HOSTILE_REF = "localhost/lxt-hostile-cp:latest"
SECRET = b"host secret: never in a container\n"


def hostile(lxenv: LxcEnv) -> tuple[Path, Path]:
    """A host secret file and an (empty) host directory, and an image whose links name them."""
    host = lxenv.root / "host"
    host.mkdir()
    secret, hostdir = host / "secret", host / "dir"
    secret.write_bytes(SECRET)
    hostdir.mkdir()
    img = busybox_image()
    layer = [
        Entry("leak", "symlink", link=str(secret)),  # absolute: the host's file
        Entry("hostdir", "symlink", link=str(hostdir)),
        Entry("up", "symlink", link="../../../../../../../../.." + str(host)),
        Entry("rootlink", "symlink", link="/"),  # the "/etc -> /" of a hostile image
        Entry("suid", data=b"#!/bin/sh\n", mode=0o4755),
        Entry("data", "dir", mode=0o755),
        Entry("data/f.txt", data=b"in the image\n"),
    ]
    img.layers.append(Layer(make_tar(layer)))
    lxenv.add_image(img, HOSTILE_REF)
    return secret, hostdir


def make(lxcri: Lxcri, lxenv: LxcEnv, name: str, running: bool, *extra: str) -> None:
    p = lxcri("create", "--name", name, *extra, HOSTILE_REF, "exec sleep 60")
    assert p.returncode == 0, p.stderr
    lxenv.remember(name)
    if "--storage" in extra:
        assert load_record(lxenv.root, name).storage == extra[extra.index("--storage") + 1]
    if running:
        engine.start(lxenv.config(), name)
        lxenv.remember(name)


STATES = [
    pytest.param(True, [], id="running"),
    pytest.param(False, ["--storage", "overlay"], id="stopped-overlay"),
    pytest.param(False, ["--storage", "dir"], id="stopped-dir"),
]


@pytest.mark.parametrize(("running", "extra"), STATES)
def test_links_to_host_files_are_never_followed_out(
    lxcri: Lxcri, lxenv: LxcEnv, tmp_path: Path, running: bool, extra: list[str]
) -> None:
    secret, _ = hostile(lxenv)
    make(lxcri, lxenv, "h1", running, *extra)
    for src in ("h1:/leak", "h1:/hostdir/../secret", "h1:/up/secret", "h1:/rootlink" + str(secret)):
        out = tmp_path / "out"
        p = lxcri("cp", "-L", src, str(out))
        assert p.returncode == 1, (src, p.stdout, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not out.exists() or SECRET not in out.read_bytes()
    # without -L the link itself is copied, as docker does: a link, not the host's content
    p = lxcri("cp", "h1:/leak", str(tmp_path / "link"))
    assert p.returncode == 0, p.stderr
    assert os.readlink(tmp_path / "link") == str(secret)
    # and a directory holding such links is copied with the links as links
    p = lxcri("cp", "h1:/", str(tmp_path / "all"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "all" / "leak").is_symlink()
    assert (tmp_path / "all" / "data" / "f.txt").read_bytes() == b"in the image\n"


@pytest.mark.parametrize(("running", "extra"), STATES)
def test_links_to_host_dirs_are_never_followed_in(
    lxcri: Lxcri, lxenv: LxcEnv, tmp_path: Path, running: bool, extra: list[str]
) -> None:
    secret, hostdir = hostile(lxenv)
    make(lxcri, lxenv, "h2", running, *extra)
    payload = tmp_path / "authorized_keys"
    payload.write_bytes(b"ssh-ed25519 AAAA attacker\n")
    for dest in ("h2:/hostdir/", "h2:/hostdir/authorized_keys", "h2:/up/dir/x", "h2:/leak"):
        p = lxcri("cp", str(payload), dest)
        assert list(hostdir.iterdir()) == [], dest
        assert secret.read_bytes() == SECRET, dest
    # "/rootlink" is "/" inside the container: the file lands in the container's root
    p = lxcri("cp", str(payload), "h2:/rootlink/")
    assert p.returncode == 0, p.stderr
    assert not Path("/authorized_keys").exists()
    rec = load_record(lxenv.root, "h2")
    if running:
        pid = engine.status(lxenv.config(), "h2").pid
        assert os.stat(f"/proc/{pid}/root/authorized_keys").st_uid == 100000
    elif rec.storage == "dir":  # bound into the state dir at start only: the source
        assert rec.mount[0] == "bind"
        assert os.stat(Path(rec.mount[2]) / "authorized_keys").st_uid == 100000
    back = tmp_path / "back"
    assert lxcri("cp", "h2:/authorized_keys", str(back)).returncode == 0
    assert back.read_bytes() == payload.read_bytes()


def test_copy_in_is_owned_by_the_containers_root_and_out_drops_setuid(
    lxcri: Lxcri, lxenv: LxcEnv, tmp_path: Path
) -> None:
    hostile(lxenv)
    make(lxcri, lxenv, "h3", True)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a\n")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "run.sh", 0o750)
    p = lxcri("cp", str(tree), "h3:/opt")
    assert p.returncode == 0, p.stderr
    p = lxcri("exec", "h3", "stat", "-c", "%u:%g %a %n", "/opt", "/opt/sub/a.txt", "/opt/run.sh")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "0:0 755 /opt",
        "0:0 644 /opt/sub/a.txt",
        "0:0 750 /opt/run.sh",
    ]
    pid = engine.status(lxenv.config(), "h3").pid
    assert os.stat(f"/proc/{pid}/root/opt/sub/a.txt").st_uid == 100000  # the mapped root
    # the existing directory /opt receives "tree" under its own name on a second copy
    assert lxcri("cp", str(tree), "h3:/opt").returncode == 0
    assert lxcri("exec", "h3", "cat", "/opt/tree/sub/a.txt").stdout == "a\n"

    p = lxcri("cp", "h3:/suid", str(tmp_path / "suid"))
    assert p.returncode == 0, p.stderr
    mode = os.stat(tmp_path / "suid").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o777 == 0o755


def test_volumes_while_running_and_stopped(lxcri: Lxcri, lxenv: LxcEnv, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("into the volume\n")
    assert (
        lxcri("create", "--name", "h4", "-v", "vol:/vol", BUSYBOX_REF, "exec sleep 60").returncode
        == 0
    )
    lxenv.remember("h4")
    p = lxcri("cp", str(f), "h4:/vol/")
    assert p.returncode == 1
    assert "on a volume (vol) that is mounted only while the container runs" in p.stderr
    engine.start(lxenv.config(), "h4")
    lxenv.remember("h4")
    p = lxcri("cp", str(f), "h4:/vol/")
    assert p.returncode == 0, p.stderr
    assert (lxenv.root / "volumes" / "vol" / "f.txt").read_text() == "into the volume\n"


def test_bad_locations_are_one_line_and_exit_1(lxcri: Lxcri, lxenv: LxcEnv, tmp_path: Path) -> None:
    assert lxcri("create", "--name", "h5", BUSYBOX_REF).returncode == 0
    lxenv.remember("h5")
    cases = {
        ("a", "b"): "give exactly one CONTAINER:PATH",
        ("h5:/a", "h5:/b"): "copying between two containers",
        ("h5:/nope", str(tmp_path / "x")): "/nope in container h5: no such file or directory",
        (str(tmp_path / "missing"), "h5:/"): "no such file or directory",
        ("ghost:/etc", str(tmp_path)): "no such container: ghost",
        ("h5:/etc/passwd", str(tmp_path / "no" / "dir") + "/"): "does not exist",
        ("h5:/etc/passwd", str(tmp_path / "newdir") + "/"): "does not exist",
    }
    for argv, msg in cases.items():
        p = lxcri("cp", *argv)
        assert p.returncode == 1, argv
        assert len(p.stderr.strip().splitlines()) == 1 and msg in p.stderr, (argv, p.stderr)
    assert not (tmp_path / "newdir").exists()


def test_a_container_swapping_a_directory_for_a_host_link_mid_copy_gains_nothing(
    lxenv: LxcEnv, tmp_path: Path
) -> None:
    """The container flips /x between a directory and a link to a host directory as fast
    as it can while cp runs: a check-then-open implementation would race into the host."""
    from lxcri_core.containers.copy import copy_in, copy_out
    from lxcri_core.errors import BackendError

    host = lxenv.root / "host"
    (host / "dir").mkdir(parents=True)
    (host / "dir" / "secret").write_bytes(SECRET)
    img = busybox_image()
    img.layers.append(
        Layer(
            make_tar(
                [
                    Entry("x", "dir", mode=0o755),
                    Entry("x/secret", data=b"the container's\n"),
                    Entry("x.link", "symlink", link=str(host / "dir")),
                ]
            )
        )
    )
    lxenv.add_image(img, HOSTILE_REF)
    flip = "while :; do mv /x /x.d; mv /x.link /x; mv /x /x.link; mv /x.d /x; done"
    lxenv.start("race", HOSTILE_REF, args=(flip.replace("mv ", "busybox mv "),))
    cfg = lxenv.config()
    payload = tmp_path / "planted"
    payload.write_bytes(b"planted\n")
    copied_in = copied_out = 0
    for i in range(150):
        out = tmp_path / f"out{i}"
        try:
            copy_out(cfg, "race", "/x/secret", str(out))
            copied_out += 1
            assert out.read_bytes() != SECRET
        except (BackendError, OSError):
            pass
        try:
            copy_in(cfg, "race", str(payload), f"/x/planted{i}")
            copied_in += 1
        except (BackendError, OSError):
            pass
        assert [p.name for p in (host / "dir").iterdir()] == ["secret"]
    assert copied_in and copied_out  # the race ran both ways, not just failed
