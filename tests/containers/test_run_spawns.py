"""``lxcri run --rm`` spawns no process of its own before LXC's: every one is start-up time.

The processes are seen as the kernel runs them (strace of execve). Before
``lxc-execute`` runs the container, the CLI reads the container's state from
LXC's monitor socket (not lxc-info), checks lxcri's bridge once per run with
an ioctl and libnftables (not ip and nft, once for the create and again for
the start) and asks liblxc its version (not ``lxc-execute --version``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lxcri_core.containers import lxc
from tests.conftest import lxcri_exe
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, make_dir

_EXECVE = re.compile(r'^\d+\s+execve\("([^"]+)", \[(.*?)\]')


def _spawned(lxenv: LxcEnv, *args: str) -> list[list[str]]:
    """argv of every program run by ``lxcri ARGS`` and its children, in order."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (run `make deps`)")
    log = make_dir(lxenv.root) / "trace"
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(log),
         lxcri_exe(), *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **lxenv.env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = []
    for line in log.read_text().splitlines():
        m = _EXECVE.match(line)
        if m and "ENOENT" not in line:  # PATH lookups that missed
            out.append(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2)))
    return out


def test_run_rm_spawns_nothing_before_lxc(lxenv: LxcEnv) -> None:
    sig = make_dir(lxenv.root, 0o777)  # the unprivileged root is host uid 100000
    spawned = _spawned(lxenv, "run", "--rm", "-v", f"{sig}:/sig", BUSYBOX_REF, "echo x > /sig/x")
    assert (sig / "x").read_text() == "x\n"  # it ran, on lxcri's bridge
    names = [Path(a[0]).name for a in spawned]
    first = next(i for i, a in enumerate(spawned) if a[0] == "lxc-execute" and "-n" in a)
    assert names[1:first] == [], f"spawned before the container: {spawned[1:first]}"


def test_active_agrees_with_lxc_info(lxenv: LxcEnv) -> None:
    """The monitor-socket read says what lxc-info says, running and stopped."""
    from lxcri_core.containers import engine
    from lxcri_core.spec.options import RunOptions

    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="act", args=("sleep 600",)))
    lxenv.remember("act")
    assert not lxc.active("act", lxenv.lxcpath)
    engine.start(cfg, "act")
    assert lxc.state("act", lxenv.lxcpath) == "RUNNING"
    assert lxc.active("act", lxenv.lxcpath)
    engine.stop(cfg, "act", timeout=0)
    assert lxc.state("act", lxenv.lxcpath) == "STOPPED"
    assert not lxc.active("act", lxenv.lxcpath)
