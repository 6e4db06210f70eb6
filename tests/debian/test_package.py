"""The Debian package (debian/): built by dpkg-buildpackage from a copy of the
checkout with a non-Debian python3 first on PATH, lintian-clean, and installed
with apt into clean Debian roots (tests/debian/root, install, checks-*)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow

#: Names a build would run a python3 by, from PATH.
FAKE_PYTHONS = ("python3", "python", "python3.11", "python3.12", "python3.13")


def _copy_checkout(dst: Path) -> None:
    """The checkout's files as a clean clone has them, plus new ones not ignored."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for f in filter(None, files):
        path = REPO / os.fsdecode(f)
        if path.is_file():  # a file deleted in the tree but still in the index: gone
            (dst / path.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
            (dst / path.relative_to(REPO)).write_bytes(path.read_bytes())
            (dst / path.relative_to(REPO)).chmod(path.stat().st_mode & 0o777)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built from the checkout's files (what a clean clone holds plus
    new files not ignored), PATH starting with a python3 that is not Debian's."""
    top = tmp_path_factory.mktemp("deb")
    src = top / "src"
    _copy_checkout(src)
    fake = top / "fakebin"
    fake.mkdir()
    for name in FAKE_PYTHONS:
        (fake / name).write_text(f'#!/bin/sh\necho "$0 $*" >>{top}/fake-python-ran\nexit 1\n')
        (fake / name).chmod(0o755)
    env = {"PATH": f"{fake}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(top), "LC_ALL": "C.UTF-8"}
    t0 = time.monotonic()
    r = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
    )
    print(f"dpkg-buildpackage: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return top


def test_build_uses_debian_python_whatever_path_holds(built: Path) -> None:
    assert not (built / "fake-python-ran").exists(), (built / "fake-python-ran").read_text()
    debs = list(built.glob("lxcri_*.deb"))
    assert len(debs) == 1
    listing = subprocess.run(["dpkg-deb", "-c", debs[0]], capture_output=True, text=True).stdout
    assert "./usr/bin/lxcri\n" in listing and "/usr/share/man/man1/lxcri.1.gz" in listing


@pytest.mark.timeout(1500)
def test_trixie_lintian_no_errors_or_warnings(built: Path) -> None:
    """lintian of the release the package is for (Proxmox VE 9's trixie), in a
    clean trixie root, overrides (debian/lxcri.lintian-overrides) applied."""
    work = built / "lintian"
    work.mkdir()
    for f in built.glob("lxcri_*"):
        (work / f.name).write_bytes(f.read_bytes())
    out = _install("trixie", "checks-lintian", work)
    assert "ok: lintian: no error, no warning" in out


def _install(suite: str, checks: str, workdir: Path, *args: str) -> str:
    t0 = time.monotonic()
    r = subprocess.run(
        [HERE / "install", suite, checks, workdir, *args],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(r.stdout)
    print(f"{suite} install test: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ALL OK"), (
        r.stdout[-6000:] + r.stderr[-6000:]
    )
    return r.stdout


@pytest.mark.timeout(1500)
def test_apt_installs_it_on_a_clean_trixie_root_and_purge_leaves_nothing(built: Path) -> None:
    work = built / "trixie"
    work.mkdir()
    deb = next(built.glob("lxcri_*.deb"))
    (work / deb.name).write_bytes(deb.read_bytes())
    out = _install("trixie", "checks-deb", work)
    assert "ok: apt-get purge" in out


@pytest.mark.timeout(1500)
def test_bookworm_way_make_install_venv_and_uninstall_leaves_nothing(built: Path) -> None:
    """Proxmox VE 8: the checkout's `make install-venv` on a clean bookworm root."""
    work = built / "bookworm"
    src = work / "src"
    _copy_checkout(src)
    # the static shim as the package build made it: the root needs no gcc
    shim = src / "hooks" / "lxcri-init"
    shim.write_bytes((built / "src" / "hooks" / "lxcri-init").read_bytes())
    shim.chmod(0o755)
    out = _install("bookworm", "checks-venv", work)
    assert "ok: make uninstall-venv PURGE=1" in out
    assert "textual 2.1.2" in out  # constraints.txt's, not bookworm's 0.1.13
