"""A real zfs-fuse pool for tests: the daemon, a file-backed pool, a dataset per test.

zfs-fuse allows one daemon per machine (it owns /var/run/zfs/zfs_socket).
The session fixture reuses a running daemon, or starts one and stops it by
PID at the end of the session, unless another session's pools are still
imported. The pool is a sparse file in the session's tmp dir; each test gets
its own child dataset (``<pool>/t<N>``), destroyed with everything under it.

Import the fixtures into a conftest: ``from tests.support.zfs import zfs_fuse,
zfs_pool, zfs_dataset``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SOCKET = Path("/var/run/zfs/zfs_socket")
#: Why the zfs tests skip in the Debian trixie root of tests/trixie/run.
NOT_IN_TRIXIE = "zfs-fuse is not in Debian trixie's main archive"
_counter = itertools.count(1)


def daemon_running() -> bool:
    """Whether a zfs-fuse daemon answers on its socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(SOCKET))
    except OSError:
        return False
    finally:
        s.close()
    return True


def zpools() -> list[str]:
    out = subprocess.run(
        ["zpool", "list", "-H", "-o", "name"], capture_output=True, text=True, check=False
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


def _wait(cond: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def settled(argv: list[str], attempts: int = 20) -> None:
    """Run a destroy, retrying while zfs-fuse still says "busy" (it does, briefly,
    right after a dataset was used); a dataset that stays busy is reported."""
    for i in range(attempts):
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode == 0 or "busy" not in out.stderr:
            break
        time.sleep(0.1 * (i + 1))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {out.stderr.strip()}")


@pytest.fixture(scope="session")
def zfs_fuse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running zfs-fuse daemon (reused, or started and later stopped by PID)."""
    if not Path("/dev/fuse").exists():
        pytest.skip("the kernel has no FUSE (/dev/fuse), so zfs-fuse cannot run")
    if os.environ.get("LXCRI_TRIXIE") and shutil.which("zfs-fuse") is None:
        pytest.skip(NOT_IN_TRIXIE)  # elsewhere a missing zfs-fuse fails: `make deps` installs it
    if daemon_running():
        yield
        return
    d = tmp_path_factory.mktemp("zfs-fuse")
    pidfile = d / "zfs-fuse.pid"
    subprocess.run(["zfs-fuse", "--pidfile", str(pidfile)], check=True)
    _wait(lambda: pidfile.exists() and pidfile.read_text().strip(), "zfs-fuse pid file")
    pid = int(pidfile.read_text().strip())
    _wait(daemon_running, "zfs-fuse socket")
    try:
        yield
    finally:
        # Another test session may have started using "our" daemon.
        if not zpools():
            os.kill(pid, signal.SIGTERM)
            _wait(lambda: not daemon_running(), "zfs-fuse to stop")


@pytest.fixture(scope="session")
def zfs_pool(zfs_fuse: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 1 GiB file-backed pool (sparse) for the session; yields its name."""
    d = tmp_path_factory.mktemp("zpool")
    vdev = d / "vdev.img"
    with open(vdev, "wb") as f:
        f.truncate(1 << 30)
    name = f"lxcritest{os.getpid()}"
    subprocess.run(
        ["zpool", "create", "-m", str(d / "mnt"), name, str(vdev)],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        settled(["zpool", "destroy", "-f", name])


@pytest.fixture
def zfs_dataset(zfs_pool: str) -> Iterator[str]:
    """A fresh dataset per test (use it as ``zfs_pool`` in the config)."""
    name = f"{zfs_pool}/t{next(_counter)}"
    subprocess.run(["zfs", "create", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        settled(["zfs", "destroy", "-R", name])
