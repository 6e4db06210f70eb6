"""The OCI lifecycle with real LXC containers, in the spirit of runtime-tools' validation:
state transitions, refused operations with runc's wording, kill signals, pid file,
exit status as the shim reaps it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.runtime.conftest import RUNTIME, Rt


def wait_for(path: Path, timeout: float = 15) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def test_create_does_not_run_the_process_before_start(rt: Rt) -> None:
    b = rt.bundle("b", args=["sh", "-c", "echo ran > /ran; echo hello; exit 3"])
    out = rt.base / "out"
    pid = rt.create("c1", b, out)
    assert (rt.base / "c1.pid").read_text() == str(pid)  # the pid file
    time.sleep(0.5)
    assert not (b / "rootfs" / "ran").exists()
    st = rt.state("c1")
    assert (st["status"], st["pid"], st["id"]) == ("created", pid, "c1")
    assert st["bundle"] == str(b) and st["ociVersion"].startswith("1.")
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 3  # the status the shim reaps is the process's
    assert (b / "rootfs" / "ran").read_text() == "ran\n"
    assert out.read_text() == "hello\n"
    st = rt.state("c1")
    assert (st["status"], st["pid"]) == ("stopped", 0)
    rt.run("delete", "c1")
    assert not (rt.root / "c1").exists()
    assert "does not exist" in rt.run("state", "c1", check=False).stderr


def test_state_running_then_stopped_and_annotations(rt: Rt) -> None:
    from tests.support.ocibundle import base_config

    cfg = base_config(["sleep", "30"])
    cfg["annotations"] = {"org.example/key": 'va"lue\nx'}
    b = rt.bundle("b", cfg)
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    st = rt.state("c1")
    assert (st["status"], st["pid"]) == ("running", pid)
    assert st["annotations"] == {"org.example/key": 'va"lue\nx'}
    listed = rt.run("list", "--format", "json").stdout
    assert '"c1"' in listed
    rt.run("kill", "c1", "KILL")
    assert rt.wait_exit(pid) == 137
    assert rt.state("c1")["status"] == "stopped"


def test_refused_operations_use_runcs_words(rt: Rt) -> None:
    b = rt.bundle("b", args=["sleep", "30"])
    pid = rt.create("c1", b)

    def err(*args: str) -> str:
        proc = rt.run(*args, check=False)
        assert proc.returncode == 1, proc
        assert rt.last_log_error()["level"] == "error"
        assert rt.last_log_error()["msg"] in proc.stderr
        return str(rt.last_log_error()["msg"])

    assert err("create", "--bundle", str(b), "c1") == "container with id exists: c1"
    assert err("exec", "c1", "true") == "cannot exec in a created container"
    rt.run("start", "c1")
    assert err("start", "c1") == "cannot start an already running container"
    assert err("delete", "c1") == "cannot delete container c1 that is not stopped: running"
    assert err("resume", "c1") == "container not paused"
    rt.run("kill", "c1", "9")
    assert rt.wait_exit(pid) == 137
    assert err("kill", "c1", "TERM") == "container not running"
    assert err("start", "c1") == "cannot start a container that has stopped"
    assert err("pause", "c1") == "container not running"
    rt.run("delete", "c1")
    assert err("state", "c1") == "container does not exist"
    assert err("delete", "c1") == "container does not exist"
    rt.run("delete", "--force", "c1")  # as runc: nothing to delete is no error with --force


def test_missing_container_as_runc_says_it(rt: Rt, tmp_path: Path) -> None:
    """The peer: runc's own message for the same operation on a missing container."""
    runc = subprocess.run(
        ["runc", "--root", str(tmp_path), "state", "nope"], capture_output=True, text=True
    )
    ours = rt.run("state", "nope", check=False)
    assert ours.returncode == runc.returncode == 1
    assert "container does not exist" in runc.stderr
    assert "container does not exist" in ours.stderr


def test_kill_signals_reach_the_process(rt: Rt) -> None:
    script = "trap 'echo usr1 >> /sig' USR1; trap 'echo term >> /sig; exit 42' TERM; "
    script += "echo ready > /ready; while :; do sleep 0.1; done"
    b = rt.bundle("b", args=["sh", "-c", script])
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    wait_for(b / "rootfs" / "ready")
    rt.run("kill", "c1", "SIGUSR1")
    assert wait_for(b / "rootfs" / "sig") == "usr1\n"
    rt.run("kill", "c1")  # SIGTERM by default, to the process (not init.lxc's kill-all)
    assert rt.wait_exit(pid) == 42
    assert (b / "rootfs" / "sig").read_text() == "usr1\nterm\n"


def test_kill_all_and_delete_force(rt: Rt) -> None:
    b = rt.bundle("b", args=["sh", "-c", "sleep 100 & sleep 100 & wait"])
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    time.sleep(0.5)
    pids = rt.run("ps", "--format", "json", "c1").stdout
    assert len(eval(pids)) >= 4  # init.lxc, sh, two sleeps
    rt.run("delete", "--force", "c1")
    assert rt.wait_exit(pid) != 0
    assert not (rt.root / "c1").exists()
    for p in eval(pids):
        assert (
            not Path(f"/proc/{p}/cmdline").exists()
            or Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] == "Z"
        )


def test_delete_of_a_created_container(rt: Rt) -> None:
    b = rt.bundle("b", args=["sh", "-c", "echo ran > /ran"])
    pid = rt.create("c1", b)
    rt.run("delete", "c1")  # runc deletes a created container without --force
    rt.wait_exit(pid)
    assert not (b / "rootfs" / "ran").exists()


def test_exec_in_a_running_container(rt: Rt) -> None:
    import json

    b = rt.bundle("b", args=["sleep", "30"])
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    proc_file = rt.base / "proc.json"
    proc_file.write_text(
        json.dumps(
            {
                "args": ["sh", "-c", "echo in-$(hostname) $FOO; pwd; exit 5"],
                "env": ["PATH=/bin", "FOO=bar"],
                "cwd": "/tmp",
                "user": {"uid": 0, "gid": 0},
            }
        )
    )
    proc = rt.run("exec", "--process", str(proc_file), "c1", check=False)
    assert (proc.returncode, proc.stdout) == (5, "in-oci-test bar\n/tmp\n")
    pid_file = rt.base / "exec.pid"
    out = rt.base / "exec.out"
    with open(out, "wb") as f:
        subprocess.run(
            [
                RUNTIME,
                "--root",
                str(rt.root),
                "exec",
                "--detach",
                "--pid-file",
                str(pid_file),
                "--process",
                str(proc_file),
                "c1",
            ],
            stdout=f,
            check=True,
        )
    epid = int(pid_file.read_text())
    assert rt.wait_exit(epid) == 5  # the detached exec is the subreaper's child too
    assert out.read_text() == "in-oci-test bar\n/tmp\n"
    rt.run("kill", "c1", "KILL")
    rt.wait_exit(pid)


def test_pause_resume(rt: Rt) -> None:
    b = rt.bundle("b", args=["sh", "-c", "while :; do date +%s%N > /tick; sleep 0.05; done"])
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    wait_for(b / "rootfs" / "tick")
    rt.run("pause", "c1")
    assert rt.state("c1")["status"] == "paused"
    time.sleep(0.2)
    frozen = (b / "rootfs" / "tick").read_text()
    time.sleep(0.4)
    assert (b / "rootfs" / "tick").read_text() == frozen
    rt.run("resume", "c1")
    assert rt.state("c1")["status"] == "running"
    time.sleep(0.4)
    assert (b / "rootfs" / "tick").read_text() != frozen
    rt.run("kill", "c1", "KILL")
    rt.wait_exit(pid)


def test_update_memory_limit(rt: Rt) -> None:
    b = rt.bundle("b", args=["sleep", "30"])
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    res = rt.base / "res.json"
    res.write_text('{"memory": {"limit": 67108864}, "pids": {"limit": 77}}')
    rt.run("update", "--resources", str(res), "c1")
    procs = eval(rt.run("ps", "--format", "json", "c1").stdout)
    cg = [ln.split(":", 2) for ln in Path(f"/proc/{procs[-1]}/cgroup").read_text().splitlines()]
    mem = next(p for _, c, p in cg if "memory" in c.split(","))
    pids = next(p for _, c, p in cg if c == "pids")
    assert Path(f"/sys/fs/cgroup/memory{mem}/memory.limit_in_bytes").read_text() == "67108864\n"
    assert Path(f"/sys/fs/cgroup/pids{pids}/pids.max").read_text() == "77\n"
    rt.run("kill", "c1", "KILL")
    rt.wait_exit(pid)


@pytest.mark.parametrize("kind", ["ipc", "uts"])
def test_kept_host_namespace(rt: Rt, kind: str) -> None:
    from tests.support.ocibundle import base_config

    cfg = base_config(["sh", "-c", f"readlink /proc/self/ns/{kind} > /ns"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
    if kind == "uts":
        del cfg["hostname"]
    b = rt.bundle("b", cfg)
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0
    # init's ns as the container sees it: the host's when kept
    assert (b / "rootfs" / "ns").read_text().strip() == os.readlink(f"/proc/self/ns/{kind}")


def test_terminal_through_the_console_socket(rt: Rt) -> None:
    """``process.terminal``: the pty's master goes to the console socket (SCM_RIGHTS),
    as containerd's shim receives it for ``ctr run -t``; the process has the slave."""
    import socket

    from tests.support.ocibundle import base_config

    cfg = base_config(
        ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; read line; echo got-$line"]
    )
    cfg["process"]["terminal"] = True
    b = rt.bundle("b", cfg)
    sock_path = rt.base / "console.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    srv.listen(1)
    pid_file = rt.base / "c1.pid"
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(
            [RUNTIME, "--root", str(rt.root), "create", "--bundle", str(b),
             "--console-socket", str(sock_path), "--pid-file", str(pid_file), "c1"],
            stdout=null, stderr=null, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        assert proc.wait(30) == 0
    conn.close()
    srv.close()
    master = fds[0]
    pid = int(pid_file.read_text())
    rt.run("start", "c1")
    os.write(master, b"hi\n")
    out = b""
    end = time.monotonic() + 15
    while b"got-hi" not in out and time.monotonic() < end:
        try:
            out += os.read(master, 1024)
        except OSError:
            break
    assert b"is-a-tty" in out and b"got-hi" in out, out
    assert rt.wait_exit(pid) == 0  # (a closed master would hang it up: SIGHUP)
    os.close(master)


def test_console_socket_without_terminal_is_refused(rt: Rt) -> None:
    b = rt.bundle("b", args=["true"])
    proc = rt.run(
        "create", "--bundle", str(b), "--console-socket", "/nonexistent", "c1", check=False
    )
    assert proc.returncode == 1
    assert "cannot use console socket if runc will not detach or allocate tty" in proc.stderr
    assert not (rt.root / "c1").exists()
