"""`lxcri kill`, `wait` and `port` with real containers."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from lxcri_core.containers import engine
from tests.conftest import lxcri_exe
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, children, free_port, wait_for

pytestmark = pytest.mark.slow

#: Reports SIGHUP and keeps running; each run leaves one "run-started" line.
HUP_SCRIPT = "echo run-started; trap 'echo got-hup' HUP; while :; do sleep 0.1; done"


def console(lxenv: LxcEnv, name: str) -> str:
    path = lxenv.state_dir(name) / "console.log"
    return path.read_text() if path.exists() else ""


def test_kill_signals_the_process_not_init(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    pid = lxenv.start("k1", args=(HUP_SCRIPT,))
    wait_for(lambda: "run-started" in console(lxenv, "k1"), what="the process to run")
    p = lxcri("kill", "-s", "HUP", "k1", "-o", "json")
    assert p.returncode == 0, p.stderr
    (doc,) = json.loads(p.stdout)
    assert doc["name"] == "k1" and doc["signal"] == "SIGHUP" and pid not in doc["pids"]
    wait_for(lambda: "got-hup" in console(lxenv, "k1"), what="the trap to see SIGHUP")
    time.sleep(1.5)  # init.lxc given SIGHUP would have ended everything by now
    st = engine.status(cfg, "k1")
    assert st.status == "running" and st.pid == pid


def test_kill_defaults_to_sigkill_with_no_restart_and_wait_reports_137(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    cfg = lxenv.config()
    lxenv.start("k2", args=(HUP_SCRIPT,), restart="always")
    wait_for(lambda: "run-started" in console(lxenv, "k2"), what="the process to run")
    assert lxcri("kill", "k2").returncode == 0
    p = lxcri("wait", "k2")
    assert (p.returncode, p.stdout.strip()) == (0, "137"), p.stderr
    wait_for(lambda: engine.supervisor_pid(lxenv.state_dir("k2")) is None, what="the supervisor")
    st = engine.status(cfg, "k2")
    assert st.status == "exited" and st.restarts == 0
    assert console(lxenv, "k2").count("run-started") == 1


def test_kill_with_another_signal_lets_the_restart_policy_apply(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    cfg = lxenv.config()
    pid = lxenv.start("k3", args=("echo run-started; exec sleep 60",), restart="on-failure")
    wait_for(lambda: children(pid), what="the process under init")
    assert lxcri("kill", "-s", "SIGUSR1", "k3").returncode == 0

    def back() -> bool:
        st = engine.status(cfg, "k3")
        return st.status == "running" and st.restarts == 1

    wait_for(back, what="the container to be restarted")
    wait_for(lambda: console(lxenv, "k3").count("run-started") == 2, what="a second run")


def test_kill_refuses_bad_signals_and_stopped_containers(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    assert lxcri("create", "--name", "k4", BUSYBOX_REF).returncode == 0
    lxenv.remember("k4")
    p = lxcri("kill", "-s", "NOPE", "k4")
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "lxcri: error: invalid signal 'NOPE': give a name (TERM, SIGHUP) or a number (1-64)"
    ]
    p = lxcri("kill", "k4")
    assert p.returncode == 1 and p.stderr.strip() == "lxcri: error: container k4 is not running"
    p = lxcri("kill", "ghost")
    assert p.returncode == 1 and "no such container: ghost" in p.stderr


def test_wait_blocks_until_exit_and_prints_each_code(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    lxenv.start("w1", args=("sleep 2; exit 3",))
    engine.create(cfg, BUSYBOX_REF, _opts("w2", "exit 5"))
    lxenv.remember("w2")
    engine.start(cfg, "w2")
    waiter = subprocess.Popen(
        [*_argv(lxcri), "wait", "w1", "w2", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(lxenv),
    )
    time.sleep(1)
    assert waiter.poll() is None, "wait returned while w1 still ran"
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert json.loads(out) == [{"name": "w1", "exit_code": 3}, {"name": "w2", "exit_code": 5}]
    # an exited container answers at once
    t0 = time.monotonic()
    p = lxcri("wait", "w1")
    assert p.stdout.strip() == "3" and time.monotonic() - t0 < 10


def test_port_lists_published_ports(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    hp, up = free_port(), free_port()
    p = lxcri(
        "create", "--name", "p1", "-p", f"{hp}:80", "-p", f"127.0.0.1:{up}:53/udp", BUSYBOX_REF
    )
    assert p.returncode == 0, p.stderr
    lxenv.remember("p1")
    lines = lxcri("port", "p1").stdout.splitlines()
    assert f"80/tcp -> 0.0.0.0:{hp}" in lines
    assert f"53/udp -> 127.0.0.1:{up}" in lines
    assert lxcri("port", "p1", "80").stdout.splitlines()[0] == f"0.0.0.0:{hp}"
    assert lxcri("port", "p1", "53/udp").stdout.strip() == f"127.0.0.1:{up}"
    doc = json.loads(lxcri("port", "p1", "53/udp", "-o", "json").stdout)
    assert doc == [
        {"container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1", "host_port": up}
    ]
    p = lxcri("port", "p1", "81")
    assert p.returncode == 1
    assert p.stderr.strip() == "lxcri: error: no public port 81 published for container p1"
    p = lxcri("port", "p1", "80/sctp")
    assert p.returncode == 1 and "invalid port '80/sctp'" in p.stderr


def _opts(name: str, script: str) -> object:
    from lxcri_core.spec.options import RunOptions

    return RunOptions(name=name, args=(script,))


def _argv(lxcri: Lxcri) -> list[str]:

    return [lxcri_exe()]


def _env(lxenv: LxcEnv) -> dict[str, str]:
    import os

    return {**os.environ, **lxenv.env}
