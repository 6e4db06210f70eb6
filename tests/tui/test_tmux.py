"""The installed ``lxcri tui`` in a real terminal (a tmux pane, 120x36): it draws the
table, keys switch screens, a shell opens inside a container with the dashboard
suspended and comes back, ``q`` quits with status 0."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import lxcri_exe
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def wait(self, pred: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} on the screen:\n{text}")
            time.sleep(0.2)


@pytest.fixture
def pane() -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (make deps installs it)")
    p = Pane("lxcri-tui-" + secrets.token_hex(4))
    try:
        yield p
    finally:
        subprocess.run(["tmux", "-L", p.socket, "kill-server"], capture_output=True)


def test_installed_tui_draws_switches_opens_a_shell_and_quits(
    lxenv: LxcEnv, pane: Pane, tmp_path: Path
) -> None:
    lxenv.start("tmuxweb", args=("sleep 300",))
    status = tmp_path / "status"
    keep = ("LXCRI_CONFIG", "LXCRI_AUTH_FILE", "HOME", "PATH", "PYTHONPATH")  # trixie: PYTHONPATH
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env |= {"LXCRI_ROOT": str(lxenv.root), "TERM": "xterm-256color"}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    tui = f"env -i {exports} {shlex.quote(lxcri_exe())} tui --backend lxc --refresh 1"
    cmd = f"{tui}; echo $? > {status}; sleep 30"
    pane.tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "36", cmd)
    text = pane.wait(lambda t: "tmuxweb" in t and "running" in t, "container row")
    assert "VMID" in text and "Quit" in text  # the table's header and the footer's keys
    pane.keys("2")
    pane.wait(lambda t: BUSYBOX_REF in t and "Layers" in t, "Images screen")
    pane.keys("1")
    pane.wait(lambda t: "tmuxweb" in t and "VMID" in t, "Containers screen again")
    # a shell in the container: the dashboard gives the terminal over and takes it back
    pane.keys("e")
    pane.wait(lambda t: "#" in t and "VMID" not in t, "a shell prompt")
    pane.keys("echo in-ct-$((6*7)) $(hostname)", "Enter")
    pane.wait(lambda t: "in-ct-42" in t, "the shell's output")
    pane.keys("exit", "Enter")
    pane.wait(lambda t: "tmuxweb" in t and "VMID" in t, "the dashboard after the shell")
    pane.keys("q")
    deadline = time.monotonic() + 20
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.read_text().strip() == "0"
