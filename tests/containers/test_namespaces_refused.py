"""When LXC itself cannot start a container, lxcri says why and records a failed start.

Reproduced for real: in a chroot (a private mount namespace with / bound onto a
directory) the kernel refuses to create user namespaces, so lxc-execute cannot
start an unprivileged container. The process never runs: that is no exit
status 1 of the process, and LXC's own reason must reach the person.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.containers.lxc import lxc_major
from lxcri_core.spec.options import RunOptions
from tests.conftest import lxcri_exe
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow

LXCRI = lxcri_exe()


def in_chroot(lxenv: LxcEnv, where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lxcri ARGS`` chrooted into a bind of / (in its own mount namespace)."""
    where.mkdir()
    cmd = shlex.join(["env", f"LXCRI_ROOT={lxenv.root}", LXCRI, *args])
    script = f"mount --rbind / {shlex.quote(str(where))} && chroot {shlex.quote(str(where))} {cmd}"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def _check_failed_start(lxenv: LxcEnv, name: str, p: subprocess.CompletedProcess[str]) -> None:
    assert p.returncode == 1, p.stderr
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    if lxc_major() >= 6:
        # LXC 6's lxc-execute ignores lxc.log.file, so lxcri gives it -o, and with -o
        # LXC copies its own error lines to stderr past -q: they come first
        lines = [ln for ln in lines if not ln.startswith("lxc-execute: ")]
    assert len(lines) == 1, p.stderr
    assert f"container {name} failed to start: " in lines[0]
    assert "Failed to clone a new set of namespaces" in lines[0] and "chroot" in lines[0]
    doc = json.loads((lxenv.state_dir(name) / "exit.json").read_text())
    # before: {"exit_code": 1} as if the process had exited 1
    assert doc["exit_code"] is None and doc["start_failed"] is True
    assert "Failed to clone" in doc["error"]
    st = engine.status(lxenv.config(), name)
    assert (st.status, st.exit_code) == ("created", None) and "Failed to clone" in st.error


def test_foreground_run_in_a_chroot(lxenv: LxcEnv, tmp_path: Path) -> None:
    engine.create(lxenv.config(), BUSYBOX_REF, RunOptions(name="fg", args=("echo ran",)))
    lxenv.remember("fg")
    p = in_chroot(lxenv, tmp_path / "r", "start", "fg")  # detached first: the supervisor
    _check_failed_start(lxenv, "fg", p)
    p = in_chroot(lxenv, tmp_path / "r2", "run", "--name", "fg2", BUSYBOX_REF, "echo ran")
    lxenv.remember("fg2")
    _check_failed_start(lxenv, "fg2", p)
    assert "ran" not in (lxenv.state_dir("fg") / "console.log").read_text()
    # outside the chroot the same container starts and runs
    assert engine.run_foreground(lxenv.config(), "fg2") == 0
    assert engine.status(lxenv.config(), "fg2").exit_code == 0
