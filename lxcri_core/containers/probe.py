"""Running a healthcheck probe with bounded memory and time.

The probe is the image's (or the ``run`` caller's) command and runs with
the root supervisor reading its output: ``capture_output`` would hold all of
it (``head -c 600000000 /dev/zero`` took a supervisor to 1.8 GB). So the
output is read as it comes, only its last ``keep`` bytes are kept (docker
shows 4 KiB), and the probe is killed once it has printed ``cap`` bytes or
run past its timeout.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

KEEP = 4096
CAP = 1 << 20


def run_capped(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    timeout: float,
    keep: int = KEEP,
    cap: int = CAP,
) -> tuple[int, str]:
    """Run ``argv``; its exit status and the last ``keep`` bytes of its output
    (stdout and stderr interleaved). -1 and the reason when it was killed for
    its timeout or for printing more than ``cap`` bytes."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=True,  # its own group: killed with whatever it started
        )
    except OSError as e:
        return -1, f"health check could not run {argv[0]}: {e.strerror}"
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    tail = b""
    total = 0
    reason = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"health check exceeded timeout ({timeout:g}s)"
                break
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break  # every writer closed the pipe
            total += len(chunk)
            tail = (tail + chunk)[-keep:]
            if total > cap:
                reason = f"health check output exceeded {cap} bytes"
                break
    if reason:
        _kill(proc)
    proc.stdout.close()  # a writer left behind gets EPIPE, not a pipe nobody drains
    try:
        rc = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        # the output closed but the probe lives on (a daemon it started holds no pipe)
        _kill(proc)
        rc = proc.wait()
        reason = reason or f"health check exceeded timeout ({timeout:g}s)"
    if reason:
        return -1, reason
    return rc, tail.decode(errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
