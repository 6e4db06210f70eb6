"""Restart policy and healthcheck of a Proxmox CT lxcri created: a detached process per run.

The hookscript's post-start starts it (phase ``lxcri-supervise``); it lives as
long as that run of the CT's init. Its steps:

- the healthcheck, if the CT has one: ``pct exec VMID -- CMD`` every interval,
  ``health.json`` kept as the plain-LXC supervisor keeps it (``starting``,
  ``healthy``, ``unhealthy``, the last results);
- when init has gone: if the hookscript's pre-stop phase wrote
  ``stop.requested`` (pct stop, shutdown, reboot, destroy all run pre-stop
  first), nothing; else the restart policy decides (docker's rules, back-off
  100 ms doubling to 1 min, reset after 10 s of running) and ``pct start``
  starts it again, whose post-start starts the next supervisor.

LXC does not keep init's exit status for a CT started in the background, so
``on-failure`` takes every exit it was not asked for as a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_pve.backends.pve_hookstate import STOP_REQUESTED as STOP_REQUESTED
from lxcri_pve.backends.pve_state import CtState

from lxcri_core.containers.probe import run_capped
from lxcri_core.fsutil import atomic_write

RESTARTS = "restarts.json"
HEALTH = "health.json"
PIDFILE = "supervisor.pid"
BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
STABLE_AFTER = 10.0
HEALTH_LOG = 5


def wanted(st: CtState) -> bool:
    return st.restart != "no" or st.healthcheck is not None


def _starttime(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def restarts(sdir: Path) -> dict[str, Any]:
    try:
        data = json.loads((sdir / RESTARTS).read_text())
    except (OSError, ValueError):
        return {"count": 0, "backoff": 0.0}
    return data if isinstance(data, dict) else {"count": 0, "backoff": 0.0}


def health(sdir: Path) -> str:
    try:
        return str(json.loads((sdir / HEALTH).read_text()).get("status", ""))
    except (OSError, ValueError, AttributeError):
        return ""


class _Health:
    def __init__(self, st: CtState, sdir: Path) -> None:
        self.st, self.sdir = st, sdir
        self.stop = threading.Event()
        self.failures = 0
        self.log: list[dict[str, Any]] = []

    def _write(self, status: str) -> None:
        doc = {"status": status, "failing_streak": self.failures, "log": self.log[-HEALTH_LOG:]}
        atomic_write(self.sdir / HEALTH, json.dumps(doc).encode())

    def probe(self, argv: list[str], timeout: float) -> tuple[int, str]:
        # bounded: the probe's output is read as it comes, never held whole
        return run_capped(["pct", "exec", str(self.st.vmid), "--", *argv], None, timeout)

    def run(self, started: float) -> None:
        hc = self.st.healthcheck
        if hc is None:
            return
        test = list(hc["test"])
        argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        status = "starting"
        self._write(status)
        while not self.stop.wait(float(hc["interval"])):
            rc, out = self.probe(argv, float(hc["timeout"]))
            if self.stop.is_set():
                return
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self.log.append({"end": now, "exit_code": rc, "output": out})
            if rc == 0:
                self.failures, status = 0, "healthy"
            elif time.monotonic() - started >= float(hc["start_period"]):
                self.failures += 1
                if self.failures >= int(hc["retries"]):
                    status = "unhealthy"
            self._write(status)


def supervise(st: CtState, sdir: Path, pid: int) -> None:
    """Watch init ``pid`` of CT ``st`` until it ends; then restart it if the policy says so."""
    from lxcri_core.containers.supervisor import should_restart

    atomic_write(sdir / PIDFILE, str(os.getpid()).encode())
    started = time.monotonic()
    born = _starttime(pid)
    checker = _Health(st, sdir)
    thread = threading.Thread(target=checker.run, args=(started,), daemon=True)
    thread.start()
    while _starttime(pid) == born and born:
        time.sleep(0.5)
    checker.stop.set()
    ran = time.monotonic() - started
    if (sdir / STOP_REQUESTED).exists():
        return
    rs = restarts(sdir)
    count = int(rs.get("count", 0))
    backoff = float(rs.get("backoff", 0.0))
    if not should_restart(st.restart, st.max_retries, 1, count, False):
        return
    backoff = BACKOFF_START if ran >= STABLE_AFTER or not backoff else min(backoff * 2, BACKOFF_MAX)
    time.sleep(backoff)
    if (sdir / STOP_REQUESTED).exists():
        return  # stopped (or destroyed) during the back-off
    atomic_write(sdir / RESTARTS, json.dumps({"count": count + 1, "backoff": backoff}).encode())
    subprocess.run(["pct", "start", str(st.vmid)], capture_output=True, text=True, check=False)
