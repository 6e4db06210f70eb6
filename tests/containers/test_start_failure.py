"""A container that cannot start is an error, not a silent exit; exits are not errors."""

from __future__ import annotations

import json

import pytest

from lxcri_core.containers import engine
from lxcri_core.errors import BackendError
from lxcri_core.spec.options import RunOptions
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, wait_for

pytestmark = pytest.mark.slow


def _break_pre_start(lxenv: LxcEnv, name: str) -> None:
    """Make the pre-start hook fail: its rootfs mount command becomes `false`."""
    path = lxenv.state_dir(name) / "lxcri.json"
    doc = json.loads(path.read_text())
    doc["mount"] = ["false", "/"]
    path.write_text(json.dumps(doc))


def test_detached_start_failure_is_reported(lxenv: LxcEnv):
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="bad", args=("sleep 30",)))
    lxenv.remember("bad")
    _break_pre_start(lxenv, "bad")
    with pytest.raises(BackendError, match=r"bad failed to start: pre-start: FAILED: .*\bfalse\b"):
        engine.start(cfg, "bad")


def test_foreground_start_failure_is_reported(lxenv: LxcEnv):
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="bad2", args=("true",)))
    lxenv.remember("bad2")
    _break_pre_start(lxenv, "bad2")
    with pytest.raises(BackendError, match="failed to start"):
        engine.run_foreground(cfg, "bad2")


def test_short_lived_failing_process_is_a_start(lxenv: LxcEnv):
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="quick", args=("exit 3",)))
    lxenv.remember("quick")
    engine.start(cfg, "quick")  # no error: the process ran
    sdir = lxenv.state_dir("quick")
    wait_for(lambda: engine.supervisor_pid(sdir) is None, 20, "the supervisor to finish")
    assert engine.run_foreground(cfg, "quick") == 3
    st = engine.status(cfg, "quick")
    assert st.status == "exited" and st.exit_code == 3


def test_second_container_on_a_published_port_does_not_start(lxenv: LxcEnv):
    cfg = lxenv.config()
    port = free_port()
    lxenv.start("p1", args=("sleep 30",), publish=(f"{port}:80",))
    engine.create(
        cfg, BUSYBOX_REF, RunOptions(name="p2", args=("sleep 30",), publish=(f"{port}:80",))
    )
    lxenv.remember("p2")
    # named by its name, not its 64-hex id
    with pytest.raises(
        BackendError, match=f"host port {port}/tcp is already published by container p1;"
    ):
        engine.start(cfg, "p2")


def test_concurrent_creates_of_one_name(lxenv: LxcEnv):
    from concurrent.futures import ThreadPoolExecutor

    cfg = lxenv.config()

    def create() -> str:
        try:
            engine.create(cfg, BUSYBOX_REF, RunOptions(name="dup", args=("true",)))
            return "created"
        except BackendError as e:
            return str(e)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(lambda _: create(), range(2)))
    lxenv.remember("dup")
    assert results[1] == "created"
    assert "already exists" in results[0]


def test_concurrent_starts_start_one_supervisor(lxenv: LxcEnv):
    from concurrent.futures import ThreadPoolExecutor

    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="once", args=("sleep 30",)))
    lxenv.remember("once")

    def start() -> str:
        try:
            engine.start(cfg, "once")
            return "started"
        except BackendError as e:
            return str(e)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(lambda _: start(), range(2)))
    assert results[1] == "started" and "already running" in results[0]


def test_rmi_refuses_an_image_a_container_uses(lxenv: LxcEnv, lxcri):
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="user1", args=("true",)))
    lxenv.remember("user1")
    proc = lxcri("rmi", BUSYBOX_REF)
    assert proc.returncode == 1
    assert "used by container(s) user1" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert lxcri("rmi", "--force", BUSYBOX_REF).returncode == 0
    # the container keeps its rootfs and still runs without the image
    assert engine.run_foreground(cfg, "user1") == 0


def test_start_recreates_a_deleted_bridge(lxenv: LxcEnv, monkeypatch):
    """After a reboot (here: the bridge deleted) existing containers start again."""
    import uuid

    from lxcri_core.network import bridge

    name = f"lxr{uuid.uuid4().hex[:8]}"
    for k, v in {"LXCRI_BRIDGE": name, "LXCRI_BRIDGE_SUBNET": "10.251.9.0/24"}.items():
        monkeypatch.setenv(k, v)
        lxenv.env[k] = v
    cfg = lxenv.config()
    try:
        engine.create(cfg, BUSYBOX_REF, RunOptions(name="rb", args=("exit 0",)))
        lxenv.remember("rb")
        bridge.remove_bridge(name)
        assert engine.run_foreground(cfg, "rb") == 0
        assert bridge.bridge_ready(name, "10.251.9.0/24") is not None
    finally:
        lxenv.remove_all()
        bridge.remove_bridge(name)


def test_detached_rm_removes_the_container_when_it_exits(lxenv: LxcEnv, lxcri):
    proc = lxcri("run", "-d", "--rm", "--name", "gone", BUSYBOX_REF, "sleep 1")
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: not lxenv.state_dir("gone").exists(), 30, "the container to be removed")
    assert "gone" not in lxcri("list", "-q").stdout.split()


def test_half_created_container_is_removable(lxenv: LxcEnv, lxcri):
    """A crash between create's steps leaves a dir without a record: rm cleans all of it."""
    from lxcri_core.network.ipam import Ipam
    from lxcri_core.storage import open_backend

    cfg = lxenv.config()
    rec = engine.create(cfg, BUSYBOX_REF, RunOptions(name="half", args=("true",)))
    (lxenv.state_dir("half") / "lxcri.json").unlink()
    assert lxcri("create", "--name", "half", BUSYBOX_REF).returncode == 1  # name still taken
    proc = lxcri("rm", "-f", "half")
    assert proc.returncode == 0, proc.stderr
    assert not lxenv.state_dir("half").exists()
    assert rec.id not in open_backend(cfg, rec.storage).containers()
    assert Ipam.from_config(cfg, cfg.bridge, cfg.bridge_subnet).get(rec.id) is None
    assert lxcri("create", "--name", "half", BUSYBOX_REF).returncode == 0
    lxenv.remember("half")


def test_concurrent_removes_give_one_clean_error(lxenv: LxcEnv):
    from concurrent.futures import ThreadPoolExecutor

    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="rmme", args=("true",)))

    def rm() -> str:
        try:
            engine.remove(cfg, "rmme", force=True)
            return "removed"
        except BackendError as e:
            return str(e)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(lambda _: rm(), range(2)))
    assert results[1] == "removed" and "no such container" in results[0]


def test_sigterm_during_create_unwinds_like_an_error():
    import os
    import signal

    with pytest.raises(engine._Terminated), engine._term_raises():
        os.kill(os.getpid(), signal.SIGTERM)
    # outside the block SIGTERM's handler is the previous one again
    assert signal.getsignal(signal.SIGTERM) is not engine._raise_terminated


def test_commands_on_several_containers_do_all_they_can(lxenv: LxcEnv, lxcri):
    cfg = lxenv.config()
    for n in ("m1", "m2"):
        engine.create(cfg, BUSYBOX_REF, RunOptions(name=n, args=("true",)))
    proc = lxcri("rm", "m1", "nosuch", "m2")
    assert proc.returncode == 1
    assert proc.stdout.split() == ["m1", "m2"]
    assert proc.stderr.count("lxcri: error:") == 1 and "nosuch" in proc.stderr
    assert not lxenv.state_dir("m1").exists() and not lxenv.state_dir("m2").exists()


def test_logs_follow_ends_with_the_container(lxenv: LxcEnv, lxcri):
    lxenv.start("brief", args=("echo bye; sleep 1",))
    proc = lxcri("logs", "-f", "brief", timeout=30)
    assert proc.returncode == 0 and "bye" in proc.stdout
