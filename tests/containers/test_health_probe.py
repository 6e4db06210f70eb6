"""The healthcheck probe as an attacker sees it: its environment's secrets never
reach a host command line (``ps``), and its output never fills the root
supervisor's memory. Real containers, the real supervisor."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from tests.conftest import lxcri_exe
from tests.support.lxcenv import LxcEnv, wait_for

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-" + os.urandom(4).hex()


def _cmdlines_with(needle: bytes) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            shown = cmd.replace(bytes(1), b" ").decode(errors="replace")
            found.append(f"{entry.name}: {shown}")
    return found


def test_probe_keeps_env_secrets_off_every_command_line(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    # the probe runs 3 s each second: most polls below fall inside one; it turns
    # healthy only if the secret did reach the probe's environment
    lxenv.start(
        "hsec",
        args=("exec sleep 60",),
        env=(f"DB_PASSWORD={SECRET}",),
        health_cmd='sleep 3; test -n "$DB_PASSWORD"',
        health_interval="1s",
    )
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        leaks = _cmdlines_with(SECRET.encode())
        assert not leaks, f"the secret is on a command line: {leaks}"
        time.sleep(0.02)
    wait_for(lambda: engine.status(cfg, "hsec").health == "healthy", what="healthy")


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_probe_output_does_not_fill_the_supervisors_memory(lxenv: LxcEnv) -> None:
    lxenv.start(
        "hbig",
        args=("exec sleep 120",),
        health_cmd="head -c 600000000 /dev/zero",
        health_interval="1s",
        health_timeout="60s",
    )
    sdir = lxenv.state_dir("hbig")
    pid = int((sdir / "supervisor.pid").read_text())

    def probed() -> list[dict[str, object]]:
        try:
            return list(json.loads((sdir / "health.json").read_text())["log"])
        except (OSError, ValueError, KeyError):
            return []

    log = wait_for(probed, 60, "a probe to finish")
    hwm = _vm_hwm_kib(pid)
    assert hwm < 100 * 1024, f"the supervisor grew to {hwm} KiB"
    assert log[-1]["exit_code"] == -1 and "exceeded" in str(log[-1]["output"])


def test_exec_in_a_container_of_an_older_shim_keeps_env_secrets_off_command_lines(
    lxenv: LxcEnv,
) -> None:
    """A container created before the shim had ``--exec`` is reached by lxc-attach
    alone; its environment goes by ``--keep-var`` there too, never ``-v NAME=VALUE``."""
    lxenv.start("hold", args=("exec sleep 60",), env=(f"DB_PASSWORD={SECRET}",))
    # what an older lxcri left: a copy of its own shim, without LXCRI_ENV_ handling
    (lxenv.state_dir("hold") / "ctr" / "init").write_bytes(b"\x7fELF an older lxcri-init\n")
    proc = subprocess.Popen(
        [lxcri_exe(), "exec", "-e", "EXTRA", "hold", "sh", "-c", "sleep 2; env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **lxenv.env, "EXTRA": f"{SECRET}x"},  # -e NAME: from here
    )
    leaks: list[str] = []
    while proc.poll() is None:
        leaks += _cmdlines_with(SECRET.encode())
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert not leaks, f"the secret is on a command line: {leaks}"
    assert f"DB_PASSWORD={SECRET}" in out.splitlines()
    assert f"EXTRA={SECRET}x" in out.splitlines()
