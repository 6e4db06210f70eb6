"""``lxcri kill``: a signal to a container's process.

The signal goes to the application — the children of LXC's ``init.lxc`` —
as ``stop`` delivers its stop signal; init.lxc itself would turn most
signals into a SIGKILL of everything one second later.

Restart policies follow docker's ``kill``: SIGKILL or the container's own
stop signal means "stop it", so the supervisor does not restart it (as
after ``lxcri stop``); any other signal (SIGHUP to reload, SIGUSR1, ...) is
no stop request, so if the process dies of it ``on-failure``/``always``/
``unless-stopped`` restart it as after a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal

from lxcri_core.config import Config
from lxcri_core.containers import lxc
from lxcri_core.containers.record import STOP_REQUESTED, containers_dir, load_record, state_dir
from lxcri_core.errors import BackendError
from lxcri_core.fsutil import atomic_write


def parse_signal(value: str) -> signal.Signals:
    """``KILL``, ``SIGKILL``, ``kill`` or ``9`` -> SIGKILL; anything else is refused."""
    text = value.strip()
    try:
        if text.isdigit():
            return signal.Signals(int(text))
        name = text.upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        raise BackendError(
            f"invalid signal {value!r}: give a name (TERM, SIGHUP) or a number (1-64)"
        ) from None


def app_pids(init_pid: int) -> list[int]:
    """The container's process(es): init.lxc's children."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{init_pid}/task"):
            with open(f"/proc/{init_pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def kill(cfg: Config, name: str, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to the running container's process; return the pids signalled."""
    rec = load_record(cfg.root, name)
    lxcpath = containers_dir(cfg.root)
    pid = lxc.init_pid(name, lxcpath) if lxc.state(name, lxcpath) == "RUNNING" else None
    if pid is None:
        raise BackendError(f"container {name} is not running")
    targets = app_pids(pid)
    if not targets:  # the process is starting or already gone: init.lxc forwards it
        targets = [pid]
    stop_sig = getattr(signal, rec.spec.stop_signal, signal.SIGTERM)
    if sig in (signal.SIGKILL, stop_sig):
        # docker's rule (see the module doc): written before the signal, so the
        # supervisor reads it when the process ends
        atomic_write(state_dir(cfg.root, name) / STOP_REQUESTED, b"")
    sent = []
    for t in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(t, sig)
            sent.append(t)
    if not sent:
        raise BackendError(f"container {name} is not running")
    return sent
