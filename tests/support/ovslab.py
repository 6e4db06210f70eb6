"""A private Open vSwitch for the tests: ovsdb-server + ovs-vswitchd (userspace datapath).

Only one userspace vswitchd can run per host ("creating tap device failed:
Device or resource busy"), and ``make test`` runs the host suite and the
trixie root's copy at once. So the daemon is started only while an
exclusive flock on ``/var/tmp/lxcri-tests/ovs.lock`` (a path both runs
share) is held, and the lock is held until the daemon has stopped: the two
runs take turns. Database, sockets, pid and log files live in a per-run
temp dir (the trixie root has its own /run). ``env`` holds the OVS_RUNDIR
that points ``ovs-vsctl`` (and LXC's own ``ovs-vsctl add-port``) at it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOCK = Path("/var/tmp/lxcri-tests/ovs.lock")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def available() -> str | None:
    """Why no OVS can run here (a package missing fails the test: `make deps` installs it;
    a kernel without tap devices skips it), or None."""
    for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (run `make deps`: openvswitch-switch)")
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} is missing (run `make deps`: openvswitch-switch)")
    if not Path("/dev/net/tun").exists():
        return "this kernel has no /dev/net/tun (the userspace datapath needs tap devices)"
    return None


def _pid(path: Path, timeout: float = 20.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise RuntimeError(f"{path} was not written")


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # PID 1 does not reap here: a zombie counts as gone
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().split(") ", 1)[1].startswith("Z"):
                return
        except (OSError, IndexError):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@dataclass
class OvsLab:
    """A running private OVS; ``vsctl`` runs ovs-vsctl against it."""

    dir: Path
    env: dict[str, str]
    pids: list[int] = field(default_factory=list)
    lock_fd: int = -1

    def vsctl(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(
            ["ovs-vsctl", "--timeout=20", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"ovs-vsctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    @classmethod
    def start(cls) -> OvsLab:
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # the other run's OVS stops first
        d = Path(tempfile.mkdtemp(prefix="lxcri-ovs-"))
        env = {
            **os.environ,
            "OVS_RUNDIR": str(d),
            "OVS_DBDIR": str(d),
            "OVS_LOGDIR": str(d),
            "OVS_SYSCONFDIR": str(d),
        }
        lab = cls(d, env, lock_fd=fd)
        try:
            db = d / "conf.db"
            subprocess.run(["ovsdb-tool", "create", str(db), str(SCHEMA)], check=True, env=env)
            subprocess.run(
                [
                    "ovsdb-server",
                    str(db),
                    f"--remote=punix:{d}/db.sock",
                    f"--pidfile={d}/ovsdb-server.pid",
                    f"--unixctl={d}/ovsdb-server.ctl",
                    f"--log-file={d}/ovsdb-server.log",
                    "-vconsole:off",
                    "--detach",
                ],
                check=True,
                env=env,
            )
            lab.pids.append(_pid(d / "ovsdb-server.pid"))
            lab.vsctl("--no-wait", "init")
            subprocess.run(
                [
                    "ovs-vswitchd",
                    f"unix:{d}/db.sock",
                    f"--pidfile={d}/ovs-vswitchd.pid",
                    f"--unixctl={d}/ovs-vswitchd.ctl",
                    f"--log-file={d}/ovs-vswitchd.log",
                    "-vconsole:off",
                    "--detach",
                ],
                check=True,
                env=env,
            )
            lab.pids.append(_pid(d / "ovs-vswitchd.pid"))
            lab.vsctl("set", "Open_vSwitch", ".", "external_ids:lxcri-test=1")  # waits for vswitchd
        except BaseException:
            lab.stop()
            raise
        return lab

    def stop(self) -> None:
        for pid in reversed(self.pids):
            _stop(pid)
        self.pids.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)  # releases the flock: the other run may start its OVS
            self.lock_fd = -1


@pytest.fixture(scope="module")
def ovs() -> Iterator[OvsLab]:
    """A private userspace Open vSwitch for a test module; OVS_RUNDIR points ovs-vsctl at it.

    Holds /var/tmp/lxcri-tests/ovs.lock while it runs (one userspace vswitchd per host):
    the trixie run's copy of the suite waits for it, and this one for theirs. Per module,
    so that wait is one module's OVS tests long, not a whole session; a start costs ~0.2 s.
    """
    why = available()
    if why:
        pytest.skip(why)
    lab = OvsLab.start()
    saved = os.environ.get("OVS_RUNDIR")
    os.environ["OVS_RUNDIR"] = lab.env["OVS_RUNDIR"]
    try:
        yield lab
    finally:
        if saved is None:
            os.environ.pop("OVS_RUNDIR", None)
        else:
            os.environ["OVS_RUNDIR"] = saved
        lab.stop()
