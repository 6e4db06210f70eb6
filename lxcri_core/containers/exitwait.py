"""``lxcri wait``: block until a container's process exits; its exit code.

The exit is what the supervisor (or a foreground ``run``) writes to
``exit.json`` when ``lxc-execute`` returns, so waiting is watching that file
change: cheap (one stat per poll, no ``lxc-*`` process), and it sees the
exit of a container that restarts right after (as ``docker wait`` does).
A stopped container returns its last exit code at once; a created one is
waited for until it has run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lxcri_core.config import Config
from lxcri_core.containers.record import load_record, state_dir
from lxcri_core.errors import BackendError

POLL = 0.1
#: How often the (costlier) check that the container still runs is made.
ALIVE_EVERY = 2.0


def _exit_doc(sdir: Path) -> tuple[str, int | None]:
    try:
        text = (sdir / "exit.json").read_text()
        doc = json.loads(text)
    except (OSError, ValueError):
        return "", None
    code = doc.get("exit_code") if isinstance(doc, dict) else None
    return text, code if isinstance(code, int) else None


def shell_status(rc: int) -> int:
    """A process killed by signal N (negative rc) reports 128+N, as a shell does."""
    return 128 - rc if rc < 0 else rc


def wait_exit(cfg: Config, name: str, timeout: float | None = None) -> int:
    """Block until ``name``'s process exits (or has exited); return its exit code."""
    from lxcri_core.containers.listing import status

    load_record(cfg.root, name)
    sdir = state_dir(cfg.root, name)
    first, code = _exit_doc(sdir)
    st = status(cfg, name).status
    if st == "exited" and code is not None:
        return shell_status(code)
    deadline = None if timeout is None else time.monotonic() + timeout
    next_alive = time.monotonic() + ALIVE_EVERY
    while True:
        if not sdir.is_dir():
            raise BackendError(f"container {name} was removed while waiting")
        text, code = _exit_doc(sdir)
        if text and text != first and code is not None:
            return shell_status(code)
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise BackendError(f"container {name} still runs after {timeout:g} s")
        if now > next_alive:
            # a supervisor killed with SIGKILL writes no exit: do not wait forever
            next_alive = now + ALIVE_EVERY
            cur = status(cfg, name)
            if cur.status not in ("created", "running", "restarting"):
                text, code = _exit_doc(sdir)
                if code is not None:
                    return shell_status(code)
                raise BackendError(f"container {name} ended without an exit status")
        time.sleep(POLL)
