"""The ``lxc-*`` tools, as lxcri uses them (one lxcpath: ``$LXCRI_ROOT/containers``).

lxcri runs every container with ``lxc-execute``: LXC's ``init.lxc`` becomes
PID 1 (reaping zombies, forwarding signals) and runs ``lxc.execute.cmd``,
the exec shim; ``lxc-execute`` exits with the process's exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from lxcri_core.errors import BackendError
from lxcri_core.runner import CmdResult, SubprocessRunner


def execute_argv(name: str, lxcpath: Path) -> list[str]:
    """The foreground command that runs a container until its process exits."""
    # -q: LXC's own error lines go to lxc.log only (lxcri reports them as one
    # line); the process's output is what the terminal or console.log gets.
    # -o: lxc-execute of LXC 6 (Debian trixie) ignores the config's lxc.log.file.
    log = lxcpath / name / "lxc.log"
    return ["lxc-execute", "-q", "-o", str(log), "-l", "ERROR", "-n", name, "-P", str(lxcpath)]


def _run(argv: Sequence[str], timeout: float = 60) -> CmdResult:
    return SubprocessRunner(BackendError, "install the lxc package", timeout)(argv)


def state(name: str, lxcpath: Path) -> str:
    """``RUNNING``, ``STOPPED``, ``STARTING``, ``STOPPING``, ``FROZEN`` ..."""
    proc = _run(["lxc-info", "-n", name, "-P", str(lxcpath), "-s", "-H"], timeout=10)
    return proc.stdout.strip() or "STOPPED"


def init_pid(name: str, lxcpath: Path) -> int | None:
    proc = _run(["lxc-info", "-n", name, "-P", str(lxcpath), "-p", "-H"], timeout=10)
    out = proc.stdout.strip()
    return int(out) if out.isdigit() else None


def stop(
    name: str,
    lxcpath: Path,
    timeout: int,
    kill: bool = False,
    stop_signal: str = "SIGTERM",
    before_kill: Callable[[], None] | None = None,
) -> None:
    """Send the process its stop signal, SIGKILL everything after ``timeout`` seconds.

    ``before_kill`` runs just before the SIGKILL (not when the stop signal
    sufficed): whoever waits for ``lxc-execute`` then knows that its exit
    status means "killed" (137), not the process's own.

    Not ``lxc-stop -t``: under lxc-execute that signals init.lxc, which
    SIGKILLs the process one second later whatever the timeout. So the
    signal goes to init.lxc's children (the container's process) directly,
    and ``lxc-stop -k`` ends what is left when the timeout has passed.
    """
    if not kill and timeout > 0:
        pid = init_pid(name, lxcpath)
        if pid is None:
            return  # not running
        sig = getattr(signal, stop_signal, signal.SIGTERM)
        for child in _children(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)
        if wait_state(name, lxcpath, "STOPPED", timeout):
            return
    if before_kill is not None:
        before_kill()
    argv = ["lxc-stop", "-n", name, "-P", str(lxcpath), "-k"]
    proc = _run(argv, timeout=30)
    # exit 2: the container was not running, which is what we wanted
    if proc.returncode not in (0, 2) and state(name, lxcpath) != "STOPPED":
        raise BackendError(f"lxc-stop {name} failed: {proc.stderr.strip()}")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def wait_state(name: str, lxcpath: Path, wanted: str, timeout: float) -> bool:
    proc = _run(
        ["lxc-wait", "-n", name, "-P", str(lxcpath), "-s", wanted, "-t", str(int(timeout))],
        timeout=timeout + 10,
    )
    return proc.returncode == 0


def attach_argv(
    name: str,
    lxcpath: Path,
    argv: Sequence[str],
    env: Sequence[str] = (),
    uid: int | None = None,
    gid: int | None = None,
) -> list[str]:
    """``lxc-attach`` running ``argv`` in the container with exactly ``env``."""
    out = ["lxc-attach", "-n", name, "-P", str(lxcpath), "--clear-env"]
    for item in env:
        out += ["-v", item]
    if uid is not None:
        out += ["-u", str(uid)]
    if gid is not None:
        out += ["-g", str(gid)]
    return [*out, "--", *argv]
