"""Restart policies and healthchecks under lxcri's per-container supervisor,
and post-stop cleanup when a container's init is killed, with real containers."""

from __future__ import annotations

import json
import os
import signal

import pytest

from lxcri_core.containers import engine
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import (
    DEMO_REF,
    LxcEnv,
    children,
    free_port,
    link_exists,
    mounts_under,
    nft_chains,
    veth_of,
    wait_for,
)

pytestmark = pytest.mark.slow

#: Each run of the container leaves one line in console.log.
RUN_LINE = "echo run-started"


def runs(lxenv: LxcEnv, name: str) -> int:
    log = lxenv.state_dir(name) / "console.log"
    return log.read_text().count("run-started") if log.exists() else 0


def supervisor_gone(lxenv: LxcEnv, name: str) -> bool:
    return engine.supervisor_pid(lxenv.state_dir(name)) is None


def test_always_brings_a_killed_process_back(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    pid = lxenv.start("alw", args=(f"{RUN_LINE}; exec sleep 60",), restart="always")
    proc = wait_for(lambda: children(pid), what="the process under init")[0]
    os.kill(proc, signal.SIGKILL)

    def back() -> bool:
        st = engine.status(cfg, "alw")
        return st.status == "running" and st.pid not in (None, pid) and st.restarts == 1

    wait_for(back, what="the container to run again")
    wait_for(lambda: runs(lxenv, "alw") == 2, what="a second run in console.log")
    assert json.loads((lxenv.state_dir("alw") / "exit.json").read_text())["exit_code"] != 0


def test_stop_does_not_trigger_a_restart(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("stp", args=(f"{RUN_LINE}; exec sleep 60",), restart="always")
    wait_for(lambda: runs(lxenv, "stp") == 1, what="the first run")
    assert lxcri("stop", "-t", "2", "stp").returncode == 0
    # stop returns once the supervisor is gone: nothing is left to restart it
    assert supervisor_gone(lxenv, "stp")
    st = engine.status(lxenv.config(), "stp")
    assert st.status == "exited" and st.restarts == 0
    assert runs(lxenv, "stp") == 1


def test_on_failure_gives_up_after_max_retries(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    engine.create(cfg, "localhost/lxt-busybox:latest", _opts("onf", "on-failure:2", 3))
    engine.start(cfg, "onf")
    wait_for(lambda: supervisor_gone(lxenv, "onf"), what="the supervisor to give up")
    st = engine.status(cfg, "onf")
    assert (st.status, st.exit_code, st.restarts) == ("exited", 3, 2)
    assert runs(lxenv, "onf") == 3  # the first run and two restarts


def test_on_failure_does_not_restart_a_clean_exit(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    engine.create(cfg, "localhost/lxt-busybox:latest", _opts("onf0", "on-failure", 0))
    engine.start(cfg, "onf0")
    wait_for(lambda: supervisor_gone(lxenv, "onf0"), what="the supervisor to end")
    st = engine.status(cfg, "onf0")
    assert (st.status, st.exit_code, st.restarts) == ("exited", 0, 0)
    assert runs(lxenv, "onf0") == 1


def test_no_does_not_restart(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    engine.create(cfg, "localhost/lxt-busybox:latest", _opts("nor", "no", 4))
    engine.start(cfg, "nor")
    wait_for(lambda: supervisor_gone(lxenv, "nor"), what="the supervisor to end")
    st = engine.status(cfg, "nor")
    assert (st.status, st.exit_code, st.restarts) == ("exited", 4, 0)
    assert runs(lxenv, "nor") == 1


def _opts(name: str, restart: str, rc: int) -> object:
    from lxcri_core.spec.options import RunOptions

    return RunOptions(name=name, args=(f"{RUN_LINE}; exit {rc}",), restart=restart)


def test_healthcheck_marks_unhealthy_then_healthy(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    lxenv.start(
        "hc",
        args=("exec sleep 60",),
        health_cmd="test -f /tmp/ok",
        health_interval="300ms",
        health_retries="2",
    )
    wait_for(lambda: engine.status(cfg, "hc").health == "unhealthy", what="unhealthy")
    doc = json.loads((lxenv.state_dir("hc") / "health.json").read_text())
    assert doc["failing_streak"] >= 2 and doc["log"][-1]["exit_code"] == 1
    p = lxcri("list")
    assert "running (unhealthy)" in p.stdout
    assert lxcri("exec", "hc", "touch", "/tmp/ok").returncode == 0
    wait_for(lambda: engine.status(cfg, "hc").health == "healthy", what="healthy")


def test_kill_9_of_init_still_runs_post_stop_cleanup(lxenv: LxcEnv) -> None:
    lxenv.add_demo()
    port = free_port()
    pid = lxenv.start("k9", DEMO_REF, publish=(f"{port}:80",))
    cid = lxenv.ids["k9"]
    veth = veth_of("k9", lxenv.lxcpath)
    assert nft_chains(cid) and mounts_under(lxenv.root) and link_exists(veth)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: supervisor_gone(lxenv, "k9"), what="the supervisor to see the exit")
    wait_for(lambda: not nft_chains(cid), what="the port chains to go")
    assert mounts_under(lxenv.root) == []
    assert not link_exists(veth)
    assert engine.status(lxenv.config(), "k9").status == "exited"
    log = (lxenv.state_dir("k9") / "hooks.log").read_text()
    assert "post-stop: unpublished ports" in log and "post-stop: unmounted" in log


def test_stop_waits_for_a_graceful_exit_within_the_timeout(lxenv: LxcEnv):
    """init.lxc alone would SIGKILL one second after SIGTERM; lxcri waits the stop timeout."""
    cfg = lxenv.config()
    script = (
        'trap "echo got-term; sleep 2; echo clean-exit; exit 0" TERM; while :; do sleep 0.1; done'
    )
    lxenv.start("grace", args=(script,), stop_timeout=10)
    wait_for(lambda: children(engine.status(cfg, "grace").pid or 0), 10, "the process to run")
    engine.stop(cfg, "grace")
    log = (lxenv.state_dir("grace") / "console.log").read_text()
    assert "got-term" in log and "clean-exit" in log
    assert engine.status(cfg, "grace").exit_code == 0
