"""End to end with Debian's containerd and its runc v2 shim, lxcri-runtime as the runc binary.

The fixture runs a containerd of its own (root, state dir, socket under a
fresh directory; no systemd) and stops it by its PID; the busybox test image
is built offline and imported with ``ctr image import``.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.conftest import BASE, RUNTIME
from tests.support.containerd import Containerd, import_busybox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def containerd() -> Iterator[Containerd]:
    for tool in ("/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2"):
        if not Path(tool).exists():
            pytest.fail(f"{tool} is missing (make deps installs containerd)")
    BASE.mkdir(mode=0o711, parents=True, exist_ok=True)
    base = BASE / f"containerd-{secrets.token_hex(4)}"
    base.mkdir(mode=0o711)
    cd = Containerd(base)
    cd.start()
    try:
        import_busybox(cd)
        yield cd
    finally:
        cd.stop()
        shutil.rmtree(base, ignore_errors=True)


def _name() -> str:
    return f"t-{secrets.token_hex(3)}"


def test_ctr_run_prints_and_returns_the_status(containerd: Containerd) -> None:
    from tests.support.containerd import IMAGE_REF

    name = _name()
    proc = containerd.ctr(
        "run", "--rm", "--runc-binary", RUNTIME, IMAGE_REF, name,
        "/bin/sh", "-c", "echo hello from $(cat /proc/self/comm); exit 7",
        check=False,
    )  # fmt: skip
    assert proc.stdout == "hello from cat\n", proc.stderr
    assert proc.returncode == 7


def test_ctr_run_detached_task_ls_exec_pause_kill_delete(containerd: Containerd) -> None:
    from tests.support.containerd import IMAGE_REF

    name = _name()
    containerd.ctr(
        "run", "-d", "--runc-binary", RUNTIME, IMAGE_REF, name,
        "/bin/sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done",
    )  # fmt: skip
    try:
        tasks = containerd.ctr("task", "ls").stdout
        line = next(ln for ln in tasks.splitlines() if ln.startswith(name))
        assert line.split()[2] == "RUNNING"
        pid = int(line.split()[1])
        assert Path(f"/proc/{pid}").exists()
        ex = containerd.ctr(
            "task", "exec", "--exec-id", "e1", name, "/bin/sh", "-c", "echo in-task; exit 4",
            check=False,
        )  # fmt: skip
        assert (ex.stdout, ex.returncode) == ("in-task\n", 4)
        pids = containerd.ctr("task", "ps", name).stdout
        assert len(pids.splitlines()) >= 3  # header, init.lxc, sh
        containerd.ctr("task", "pause", name)
        line = next(ln for ln in containerd.ctr("task", "ls").stdout.splitlines() if name in ln)
        assert line.split()[2] == "PAUSED"
        containerd.ctr("task", "resume", name)
        line = next(ln for ln in containerd.ctr("task", "ls").stdout.splitlines() if name in ln)
        assert line.split()[2] == "RUNNING"
        containerd.ctr("task", "kill", name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            tasks = containerd.ctr("task", "ls").stdout
            if "STOPPED" in next(ln for ln in tasks.splitlines() if ln.startswith(name)):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"task {name} did not stop: {tasks}")
        containerd.ctr("task", "delete", name)
        assert name not in containerd.ctr("task", "ls").stdout
    finally:
        containerd.ctr("task", "delete", "--force", name, check=False)
        containerd.ctr("container", "rm", name, check=False)


def test_ctr_run_error_reaches_the_user(containerd: Containerd) -> None:
    """A config LXC cannot express fails the run with the runtime's own words."""
    from tests.support.containerd import IMAGE_REF

    name = _name()
    proc = containerd.ctr(
        "run", "--rm", "--runc-binary", RUNTIME, "--rdt-class", "gold",
        IMAGE_REF, name, "/bin/true",
        check=False,
    )  # fmt: skip
    containerd.ctr("container", "rm", name, check=False)
    assert proc.returncode != 0
    assert "linux.intelRdt: LXC cannot express it" in proc.stderr


def test_ctr_run_with_a_terminal(containerd: Containerd) -> None:
    """``ctr run -t``: the shim hands lxcri-runtime a console socket; ``script`` gives
    ctr the terminal it wants on its own side."""
    import shlex
    import subprocess

    from tests.support.containerd import CTR, IMAGE_REF

    name = _name()
    ctr = [CTR, "--address", str(containerd.socket), "--namespace", containerd.namespace]
    cmd = [*ctr, "run", "--rm", "-t", "--runc-binary", RUNTIME, IMAGE_REF, name,
           "/bin/sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty-yes; exit 5"]  # fmt: skip
    proc = subprocess.run(
        ["script", "-qec", shlex.join(cmd), "/dev/null"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    containerd.ctr("container", "rm", name, check=False)
    assert "tty-yes" in proc.stdout, proc
    assert proc.returncode == 5


def test_ctr_task_exec_with_a_terminal(containerd: Containerd) -> None:
    import shlex
    import subprocess

    from tests.support.containerd import CTR, IMAGE_REF

    name = _name()
    containerd.ctr("run", "-d", "--runc-binary", RUNTIME, IMAGE_REF, name, "sleep", "60")
    try:
        ctr = [CTR, "--address", str(containerd.socket), "--namespace", containerd.namespace]
        cmd = [*ctr, "task", "exec", "-t", "--exec-id", "tty1", name,
               "/bin/sh", "-c", "[ -t 0 ] && echo exec-tty; exit 6"]  # fmt: skip
        proc = subprocess.run(
            ["script", "-qec", shlex.join(cmd), "/dev/null"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert "exec-tty" in proc.stdout, proc
        assert proc.returncode == 6
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", name, check=False)
        time.sleep(0.5)
        containerd.ctr("task", "delete", "--force", name, check=False)
        containerd.ctr("container", "rm", name, check=False)
