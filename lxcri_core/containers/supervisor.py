"""The per-container supervisor: restart policy and healthcheck.

``python -m lxcri_core.containers.supervisor ROOT NAME`` runs detached (its
own session) for as long as the container should run. It runs the
container with ``lxc-execute`` (output appended to ``console.log``), and
when the process exits it records the status in ``exit.json`` and decides,
by the restart policy, whether to start it again: docker's back-off (100 ms
doubling to 1 min, reset after 10 s of running). ``lxcri stop`` writes
``stop.requested`` first, so a stop is never mistaken for a crash, and
wakes a back-off with SIGUSR1; a stop that had to SIGKILL writes
``stop.killed`` first, and the run's exit status is then 137. A run that
LXC could not start (its own ERROR lines in lxc.log) is recorded as a failed
start, with LXC's reason, and is not retried.

Healthchecks run in a thread with ``lxc-attach`` at the spec's interval;
``health.json`` holds ``starting``/``healthy``/``unhealthy`` and the last
results, as ``docker inspect`` shows them.

Why a process per container rather than a timer and hooks: a restart has
to follow the exit at once, and the exit status is only known to whoever
waited for ``lxc-execute``; a process that does both is the simplest thing
that is right, and costs ~15 MB per container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxcri_core.config import Config, parse_config
from lxcri_core.containers import lxc
from lxcri_core.containers.logtimes import LogStamper
from lxcri_core.containers.probe import run_capped
from lxcri_core.containers.record import (
    STOP_KILLED,
    STOP_REQUESTED,
    ContainerRecord,
    exit_status,
    load_record,
    lxcpath_for_root,
    record_exit,
    record_started,
    state_dir,
)
from lxcri_core.fsutil import atomic_write
from lxcri_core.spec.lxc_config import CTR_DIR, DEFAULT_INIT_SHIM

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
STABLE_AFTER = 10.0
HEALTH_LOG = 5


def should_restart(policy: str, max_retries: int, rc: int, restarts: int, stopped: bool) -> bool:
    """Docker's rules: ``no``, ``on-failure[:N]``, ``always``, ``unless-stopped``."""
    if stopped or policy == "no":
        return False
    if policy == "on-failure":
        return rc != 0 and (max_retries == 0 or restarts < max_retries)
    return policy in ("always", "unless-stopped")


class Health:
    """Runs the healthcheck and keeps ``health.json`` current."""

    def __init__(self, rec: ContainerRecord, sdir: Path, lxcpath: Path) -> None:
        self.rec, self.sdir, self.lxcpath = rec, sdir, lxcpath
        self.stop = threading.Event()
        self.failures = 0
        self.log: list[dict[str, Any]] = []
        self.shim_exec = lxc.shim_has_exec(sdir / CTR_DIR / "init")

    def _write(self, status: str) -> None:
        doc = {"status": status, "failing_streak": self.failures, "log": self.log[-HEALTH_LOG:]}
        atomic_write(self.sdir / "health.json", json.dumps(doc).encode())

    def probe(self) -> tuple[int, str]:
        """One run of the check, as ``lxcri exec`` runs a command: the env values
        reach the shim through lxc-attach's environment, never its argv."""
        hc = self.rec.spec.healthcheck
        assert hc is not None
        spec = self.rec.spec
        u = spec.user
        if self.shim_exec:
            argv, env = lxc.shim_exec_argv(
                self.rec.name,
                self.lxcpath,
                list(hc.argv),
                spec.env,
                u.uid,
                u.gid,
                u.additional_gids,
                spec.working_dir,
                spec.security.shim_sets_ids,
                DEFAULT_INIT_SHIM,
            )
        else:  # a container of an older lxcri: its shim has no --exec
            argv, kept = lxc.attach_argv(
                self.rec.name, self.lxcpath, list(hc.argv), spec.env, u.uid, u.gid
            )
            env = {**os.environ, **kept}
        return run_capped(argv, env, hc.timeout)

    def run(self, started: float) -> None:
        hc = self.rec.spec.healthcheck
        if hc is None:
            return
        self.failures = 0
        status = "starting"
        self._write(status)
        while not self.stop.wait(hc.interval):
            rc, out = self.probe()
            if self.stop.is_set():
                return
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self.log.append({"end": now, "exit_code": rc, "output": out})
            in_grace = time.monotonic() - started < hc.start_period
            if rc == 0:
                self.failures, status = 0, "healthy"
            elif not in_grace:
                self.failures += 1
                if self.failures >= hc.retries:
                    status = "unhealthy"
            self._write(status)


def supervise(root: Path, name: str, cfg: Config | None = None) -> int:
    """Run ``name`` until its restart policy says stop; ``cfg`` is the config of the
    ``lxcri start`` that spawned us (its bridge is the one a restart needs)."""
    sdir = state_dir(root, name)
    path = lxcpath_for_root(root)
    stamper = LogStamper(sdir).start()  # console.times, for `logs -t/--since`
    restarts = 0
    backoff = BACKOFF_START
    current: subprocess.Popen[bytes] | None = None
    rc = 0

    stopping = threading.Event()

    def mark_killed() -> None:
        atomic_write(sdir / STOP_KILLED, b"")

    def on_term(signum: int, frame: Any) -> None:
        stopping.set()  # also ends a restart back-off at once
        atomic_write(sdir / STOP_REQUESTED, b"")
        if current is not None and current.poll() is None:
            spec = load_record(root, name).spec
            lxc.stop(
                name, path, spec.stop_timeout, stop_signal=spec.stop_signal, before_kill=mark_killed
            )

    def on_wake(signum: int, frame: Any) -> None:
        # `lxcri stop` wrote stop.requested and stops the container itself (with
        # its own -t): only a restart back-off must end now, not after up to 1 min
        stopping.set()

    # handlers first, then the pid file: whoever finds the pid may signal it
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_wake)
    atomic_write(sdir / "supervisor.pid", str(os.getpid()).encode())
    try:
        while True:
            if stopping.is_set() or (sdir / STOP_REQUESTED).exists():
                return rc  # a stop came during the back-off: do not start again
            rec = load_record(root, name)
            if restarts and cfg is not None:
                _ensure_bridge(cfg, rec)
            started = time.monotonic()
            health = Health(rec, sdir, path)
            offset = _size(sdir / "lxc.log")
            record_started(sdir)
            with open(sdir / "console.log", "ab") as out:
                current = subprocess.Popen(
                    lxc.execute_argv(name, path),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                )
                checker = threading.Thread(target=health.run, args=(started,), daemon=True)
                checker.start()
                raw = current.wait()
            health.stop.set()
            stopped = (sdir / STOP_REQUESTED).exists()
            rc = exit_status(raw, killed=(sdir / STOP_KILLED).exists())
            why = _start_error(sdir, offset) if raw != 0 else None
            pol = rec.spec.restart
            again = should_restart(pol.name, pol.max_retries, rc, restarts, stopped)
            record_exit(sdir, rc, restarts, start_failed=why is not None, error=why or "")
            if why is not None:
                # LXC could not start it: retrying cannot help, and the error must stay readable
                print(f"lxcri supervisor: {name} failed to start: {why}", file=sys.stderr)
                return rc
            if not again:
                return rc
            if time.monotonic() - started > STABLE_AFTER:
                backoff = BACKOFF_START
            if stopping.wait(backoff):
                return rc
            backoff = min(backoff * 2, BACKOFF_MAX)
            if (sdir / STOP_REQUESTED).exists():
                return rc
            restarts += 1
            record_exit(sdir, rc, restarts)
    finally:
        stamper.stop()
        with contextlib.suppress(FileNotFoundError):
            (sdir / "supervisor.pid").unlink()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _start_error(sdir: Path, offset: int) -> str | None:
    from lxcri_core.containers.lifecycle import start_error

    return start_error(sdir, offset)


def _ensure_bridge(cfg: Config, rec: ContainerRecord) -> None:
    """Before a restart, as before a start: the bridge may be gone (an admin's
    ``ip link del``); a failure is LXC's to report when the start fails."""
    from lxcri_core.containers.netplan import ensure_bridge_for as ensure

    try:
        ensure(cfg, rec)
    except Exception as e:
        print(f"lxcri supervisor: bridge {rec.bridge}: {e}", file=sys.stderr, flush=True)


def load_supervisor_config(root: Path, path: str | None) -> Config:
    """The config ``lxcri start`` wrote for us (its ``--config``, env and flags);
    without one (a supervisor of an older lxcri), the default config."""
    if path:
        return parse_config(json.loads(Path(path).read_text()), path)
    from lxcri_core.config import load_config

    return load_config(root=root)


def main() -> None:
    root, name = Path(sys.argv[1]), sys.argv[2]
    cfg = load_supervisor_config(root, sys.argv[3] if len(sys.argv) > 3 else None)
    from lxcri_core.log import bind_container, setup_logging

    # stderr is supervisor.log (or the journal): JSON lines naming the container
    setup_logging(cfg.log_level, json=True)
    try:
        vmid: int | None = load_record(root, name).vmid
    except Exception:
        vmid = None
    bind_container(name, vmid).bind()
    rc = supervise(root, name, cfg)
    try:
        auto_remove = load_record(root, name).auto_remove
    except Exception:
        auto_remove = False  # removed meanwhile
    if auto_remove:  # `run -d --rm`: the container goes when its process has ended
        from lxcri_core.containers.remove import remove

        try:
            remove(cfg, name, force=True)
        except Exception as e:  # supervisor.log is where this can be read
            print(f"lxcri supervisor: removing {name} failed: {e}", file=sys.stderr)
    sys.exit(rc)


if __name__ == "__main__":
    main()
