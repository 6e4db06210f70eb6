"""Start (supervised), stop, restart and run in the foreground of a plain-LXC container."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lxcri_core.config import Config, config_to_dict
from lxcri_core.containers import lxc
from lxcri_core.containers.locks import _raise_terminated, _Terminated
from lxcri_core.containers.netplan import ensure_bridge_for
from lxcri_core.containers.private import (
    pass_old_volumes,
    secure_root,
    secure_state_dir,
    shared_shim,
)
from lxcri_core.containers.record import (
    STOP_KILLED,
    STOP_REQUESTED,
    ContainerRecord,
    exit_status,
    load_record,
    lxcpath,
    record_exit,
    record_started,
    save_record,
    state_dir,
)
from lxcri_core.containers.runstate import SUPERVISOR_CONFIG, _read_json, supervisor_pid
from lxcri_core.containers.status import ExitDoc
from lxcri_core.errors import BackendError
from lxcri_core.fsutil import atomic_write, flocked
from lxcri_core.log import get_logger

log = get_logger(__name__)


def _upgrade_state(cfg: Config, rec: ContainerRecord) -> ContainerRecord:
    """Before a start: what an older lxcri made gets private modes (containers.private),
    and a dir or zfs rootfs LXC used in place is mounted in the state dir instead."""
    sdir = state_dir(cfg.root, rec.name)
    secure_root(cfg.root)
    shared_shim(cfg.root)  # an upgraded lxcri's shim, for every container started now
    mount_point = sdir / "rootfs"
    if rec.rootfs != str(mount_point) and not rec.mount:
        old = f"lxc.rootfs.path = dir:{rec.rootfs}\n"
        text = (sdir / "config").read_text()
        if old in text:
            mount_point.mkdir(exist_ok=True)
            atomic_write(
                sdir / "config",
                text.replace(old, f"lxc.rootfs.path = dir:{mount_point}\n").encode(),
                mode=0o600,
            )
            rec = dataclasses.replace(
                rec,
                rootfs=str(mount_point),
                mount=("mount", "--bind", rec.rootfs, str(mount_point), "/"),
            )
            save_record(cfg.root, rec)
    pass_old_volumes(cfg.root, sdir, rec.spec)
    secure_state_dir(sdir, rec.spec)
    return rec


def _clear_stop_request(sdir: Path) -> None:
    for marker in (STOP_REQUESTED, STOP_KILLED):
        with contextlib.suppress(FileNotFoundError):
            (sdir / marker).unlink()


def _log_offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def start_error(sdir: Path, lxc_log_offset: int) -> str | None:
    """The reason LXC gave for failing to start, from what it logged since the offset.

    A process that ran and exited non-zero logs nothing there; a start that
    failed (a hook, a mount, the config) logs ERROR lines, and the hooks log
    their own failures in hooks.log.
    """
    try:
        with open(sdir / "lxc.log", "rb") as f:
            f.seek(lxc_log_offset)
            new = f.read().decode(errors="replace")
    except OSError:
        return None
    # lxc.log is shared by every lxc-* tool: lxc-info (lxcri list/status) logs
    # errors of its own while a container stops. Only lxc-execute's count.
    errors = [ln for ln in new.splitlines() if ln.startswith("lxc-execute ") and " ERROR " in ln]
    # a start LXC gave up on ends in __lxc_start ("Failed to initialize/spawn
    # container"); errors without it are LXC's tear-down after the process ran
    # (a veth on a bridge deleted meanwhile): the process's own exit status stands
    if not any("__lxc_start" in ln or "lxc_execute.c" in ln for ln in errors):
        return None
    if any("hook" in ln for ln in errors):
        hooks = (sdir / "hooks.log").read_text() if (sdir / "hooks.log").exists() else ""
        failed = [line for line in hooks.splitlines() if "FAILED" in line]
        if failed:
            return failed[-1].split(" ", 1)[-1].strip()  # without the time stamp
    # "lxc-execute NAME TIME ERROR conf - ../src/lxc/conf.c:f:1 - Permission denied - what"
    parts = errors[0].split(" - ")[1:]
    why = " - ".join(p for p in parts if ".c:" not in p).strip() or errors[0]
    if "Failed to clone a new set of namespaces" in why:
        why += f"; {NO_NAMESPACES_HINT}"
    return why


#: What a failed clone of the namespaces means, for people (seen in a chroot).


NO_NAMESPACES_HINT = (
    "LXC cannot create the container's namespaces here: the kernel refuses user "
    "namespaces in a chroot (use pivot_root) and where they are restricted "
    "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)"
)


def run_foreground(
    cfg: Config, name: str, *, stdin: bool = False, bridge_checked: bool = False
) -> int:
    """Run the container attached to this terminal; return the process's exit status.

    Ctrl-C and SIGTERM stop the container (its stop signal, then SIGKILL
    after its timeout) before returning, so ``--rm`` can clean up.
    ``bridge_checked``: the create of this very run checked lxcri's bridge just now.
    """
    rec = _upgrade_state(cfg, load_record(cfg.root, name))
    sdir = state_dir(cfg.root, name)
    # the supervisor is alive from before the first start until after post-stop
    if supervisor_pid(sdir) or lxc.active(name, lxcpath(cfg)):
        raise BackendError(f"container {name} is already running")
    _clear_stop_request(sdir)
    if not bridge_checked:
        ensure_bridge_for(cfg, rec)
    offset = _log_offset(sdir / "lxc.log")
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        record_started(sdir)
        proc = subprocess.Popen(
            lxc.execute_argv(name, lxcpath(cfg)),
            stdin=None if stdin else subprocess.DEVNULL,
        )
        try:
            raw = proc.wait()
        except (KeyboardInterrupt, _Terminated):
            lxc.stop(
                name,
                lxcpath(cfg),
                rec.spec.stop_timeout,
                stop_signal=rec.spec.stop_signal,
                before_kill=lambda: atomic_write(sdir / STOP_KILLED, b""),
            )
            raw = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old)
    rc = exit_status(raw, killed=(sdir / STOP_KILLED).exists())
    why = start_error(sdir, offset) if raw != 0 else None
    record_exit(sdir, rc, restarts=0, start_failed=why is not None, error=why or "")
    if why is not None:
        raise BackendError(f"container {name} failed to start: {why}")
    return rc


def start(cfg: Config, name: str, wait: float = 20, *, bridge_checked: bool = False) -> None:
    """Start ``name`` detached, under its supervisor; return once it runs.
    ``bridge_checked``: as for ``run_foreground``."""
    from lxcri_core.containers import generations

    if generations.journal_path(cfg.root, name).exists():  # an upgrade a crash interrupted
        from lxcri_core.containers.locks import _name_lock

        with _name_lock(cfg, name):
            generations.recover(cfg, name)
    load_record(cfg.root, name)
    # concurrent starts: the second waits, then sees the supervisor and refuses
    with flocked(state_dir(cfg.root, name) / "start.lock"):
        _start_locked(cfg, name, wait, bridge_checked)


def _start_locked(cfg: Config, name: str, wait: float, bridge_checked: bool) -> None:
    rec = _upgrade_state(cfg, load_record(cfg.root, name))
    sdir = state_dir(cfg.root, name)
    if supervisor_pid(sdir) or lxc.active(name, lxcpath(cfg)):
        raise BackendError(f"container {name} is already running")
    _clear_stop_request(sdir)
    with contextlib.suppress(FileNotFoundError):
        (sdir / "exit.json").unlink()
    if not bridge_checked:
        ensure_bridge_for(cfg, rec)
    offset = _log_offset(sdir / "lxc.log")
    # the supervisor works with this very config (a --config file, flags), not
    # the default one: it releases the address on the container's bridge
    cfg_file = sdir / SUPERVISOR_CONFIG
    atomic_write(cfg_file, json.dumps(config_to_dict(cfg)).encode(), mode=0o600)
    with open(sdir / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lxcri_core.containers.supervisor",
                str(cfg.root),
                name,
                str(cfg_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if lxc.state(name, lxcpath(cfg)) == "RUNNING":
            log.info("container started", name=name, id=rec.id)
            return
        if (sdir / "exit.json").exists() or proc.poll() is not None:
            break
        time.sleep(0.01)
    else:
        raise BackendError(f"container {name} did not start within {wait:.0f} s")
    exit_doc = _read_json(sdir / "exit.json")
    if exit_doc.get("start_failed"):
        why = exit_doc.get("error") or "see its lxc.log"
        raise BackendError(f"container {name} failed to start: {why}")
    if exit_doc.get("exit_code") and (why := start_error(sdir, offset)):
        raise BackendError(f"container {name} failed to start: {why}")
    if not exit_doc:  # the supervisor died before the container ran
        try:
            tail = (sdir / "supervisor.log").read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            tail = f"exit status {proc.returncode}"
        raise BackendError(f"container {name} did not start: its supervisor ended: {tail}")
    # otherwise it ran and exited already (a short-lived process): a start, too


def stop(cfg: Config, name: str, timeout: int | None = None) -> None:
    """Stop ``name``: its stop signal, SIGKILL after the timeout; no restart follows.

    Returns within about the timeout also when the container is in a
    restart back-off (its supervisor is woken, not waited for) or is being
    restarted at this moment (it is stopped again until the supervisor ends).
    """
    rec = load_record(cfg.root, name)
    sdir = state_dir(cfg.root, name)
    atomic_write(sdir / STOP_REQUESTED, b"")
    t = rec.spec.stop_timeout if timeout is None else timeout
    pid = supervisor_pid(sdir)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # ends a back-off now; see supervisor.on_wake
    # no supervisor (it was killed) yet running: nobody else will record the exit
    orphan = pid is None and lxc.state(name, lxcpath(cfg)) != "STOPPED"
    deadline = time.monotonic() + t + 5
    while True:
        if lxc.state(name, lxcpath(cfg)) != "STOPPED":
            lxc.stop(
                name,
                lxcpath(cfg),
                t,
                stop_signal=rec.spec.stop_signal,
                before_kill=lambda: atomic_write(sdir / STOP_KILLED, b""),
            )
        if not (pid and supervisor_pid(sdir)):
            break
        if time.monotonic() > deadline:  # a supervisor that does not end: end it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            break
        time.sleep(0.05)
    if orphan:  # its own status is lost with the supervisor; a SIGKILL's is not
        restarts = ExitDoc.from_json(_read_json(sdir / "exit.json"))
        record_exit(
            sdir,
            137 if (sdir / STOP_KILLED).exists() else None,
            restarts.restarts if restarts else 0,
        )
    log.info("container stopped", name=name)


def restart(cfg: Config, name: str, timeout: int | None = None) -> None:
    stop(cfg, name, timeout)
    start(cfg, name)
