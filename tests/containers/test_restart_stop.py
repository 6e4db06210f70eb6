"""--restart needs -d; a crash-looping container stops at once and stays stopped."""

from __future__ import annotations

import time

import pytest

from lxcri_core.containers import engine
from lxcri_core.spec.options import RunOptions
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, wait_for

pytestmark = pytest.mark.slow


def test_restart_without_detach_is_refused_and_leaves_nothing(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    p = lxcri("run", "--restart", "always", "--name", "fg", BUSYBOX_REF, "true")
    assert p.returncode == 2
    assert "--restart always needs -d" in p.stderr
    assert not lxenv.state_dir("fg").exists()
    assert lxcri("list", "-q").stdout.split() == []
    # --restart no is docker's default and fine in the foreground
    p = lxcri("run", "--rm", "--restart", "no", BUSYBOX_REF, "exit 3")
    assert p.returncode == 3, p.stderr


def test_stopping_a_crash_loop_is_quick_and_final(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    opts = RunOptions(name="loop", args=("echo ran; exit 1",), restart="always")
    engine.create(cfg, BUSYBOX_REF, opts)
    lxenv.remember("loop")
    engine.start(cfg, "loop")
    # after 5 restarts the back-off is 3.2 s: longer than the stop timeout below
    wait_for(lambda: engine.status(cfg, "loop").restarts >= 5, 30, "five restarts")
    t0 = time.monotonic()
    p = lxcri("stop", "-t", "2", "loop")
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert took < 2, f"stop took {took:.1f} s"
    assert engine.supervisor_pid(lxenv.state_dir("loop")) is None
    st = engine.status(cfg, "loop")
    runs = (lxenv.state_dir("loop") / "console.log").read_text().count("ran")
    time.sleep(4)  # longer than the back-off it was in: no restart comes after all
    assert engine.status(cfg, "loop").status == "exited" == st.status
    assert (lxenv.state_dir("loop") / "console.log").read_text().count("ran") == runs
