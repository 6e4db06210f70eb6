"""The ``lxc-*`` tools, as lxcri uses them (one lxcpath: ``$LXCRI_ROOT/containers``).

lxcri runs every container with ``lxc-execute``: LXC's ``init.lxc`` becomes
PID 1 (reaping zombies, forwarding signals) and runs ``lxc.execute.cmd``,
the exec shim; ``lxc-execute`` exits with the process's exit status.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from lxcri_core.errors import BackendError
from lxcri_core.runner import CmdResult, SubprocessRunner


def execute_argv(name: str, lxcpath: Path) -> list[str]:
    """The foreground command that runs a container until its process exits."""
    # -q: LXC's own error lines go to lxc.log only (lxcri reports them as one
    # line); the process's output is what the terminal or console.log gets.
    argv = ["lxc-execute", "-q", "-n", name, "-P", str(lxcpath)]
    if lxc_major() >= 6:
        # lxc-execute of LXC 6 (Debian trixie) ignores the config's lxc.log.file;
        # LXC 5 honours it, and -o there also copies every line to stderr, past -q,
        # into the terminal or the app's console.log
        argv[2:2] = ["-o", str(lxcpath / name / "lxc.log"), "-l", "ERROR"]
    return argv


@functools.cache
def lxc_major() -> int:
    """LXC's major version (``lxc-execute --version``: ``5.0.2``), 0 when unknown.

    Asked of liblxc itself first (``lxc_get_version``, ~1 ms): the lxc-* tools
    are built with it, and a process less is spawned on every foreground run.
    """
    import ctypes

    try:
        get = ctypes.CDLL("liblxc.so.1").lxc_get_version
        get.restype = ctypes.c_char_p
        return int(get().decode().split(".", 1)[0])
    except (OSError, AttributeError, ValueError):
        pass  # no liblxc on the loader's path: the tool says it
    try:
        out = subprocess.run(
            ["lxc-execute", "--version"], capture_output=True, text=True, timeout=10
        ).stdout
        return int(out.strip().split(".", 1)[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def _run(argv: Sequence[str], timeout: float = 60) -> CmdResult:
    return SubprocessRunner(BackendError, "install the lxc package", timeout)(argv)


def state(name: str, lxcpath: Path) -> str:
    """``RUNNING``, ``STOPPED``, ``STARTING``, ``STOPPING``, ``FROZEN`` ..."""
    proc = _run(["lxc-info", "-n", name, "-P", str(lxcpath), "-s", "-H"], timeout=10)
    return proc.stdout.strip() or "STOPPED"


def state_pid(name: str, lxcpath: Path) -> tuple[str, int | None]:
    """``state`` and ``init_pid`` of one container with one ``lxc-info``."""
    proc = _run(["lxc-info", "-n", name, "-P", str(lxcpath), "-s", "-p", "-H"], timeout=10)
    # with two fields lxc-info labels them even with -H: "State: RUNNING", "PID: 42"
    fields = dict(ln.split(":", 1) for ln in proc.stdout.splitlines() if ":" in ln)
    st = fields.get("State", "").strip() or "STOPPED"
    pid = fields.get("PID", "").strip()
    return st, int(pid) if pid.isdigit() else None


#: The longest abstract socket name (sun_path less its leading NUL byte).
_SUN_PATH_MAX = 107


def _monitor_sockets(lxcpath: Path) -> set[str]:
    """Names of the containers of ``lxcpath`` whose LXC monitor listens (any state but
    STOPPED): LXC's command socket is the abstract ``@LXCPATH/NAME/command``."""
    prefix = f"@{lxcpath}/"
    out: set[str] = set()
    try:
        with open("/proc/net/unix", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return out
    for line in data.splitlines():
        path = line.rsplit(" ", 1)[-1]
        if path.startswith(prefix) and path.endswith("/command"):
            out.add(path[len(prefix) : -len("/command")])
    return out


def active(name: str, lxcpath: Path) -> bool:
    """Whether LXC runs ``name`` in any state but STOPPED (starting, running, stopping...).

    One read of ``/proc/net/unix`` (is its monitor's command socket there?)
    instead of an ``lxc-info`` process on every start and remove; a name too
    long for its socket to be found that way (LXC hashes it) asks lxc-info.
    """
    if len(f"{lxcpath}/{name}/command") > _SUN_PATH_MAX:
        return state(name, lxcpath) != "STOPPED"
    return name in _monitor_sockets(lxcpath)


def states(lxcpath: Path, names: Sequence[str]) -> dict[str, tuple[str, int | None]]:
    """LXC's state and init pid of every container named, in bulk.

    One read of ``/proc/net/unix`` says which containers have a monitor; only
    when one has (or a name is too long for its socket to be found that way,
    LXC then hashes it) does one ``lxc-ls`` ask them all: one process for the
    whole list, never one per container. Absent names are STOPPED.
    """
    live = _monitor_sockets(lxcpath)
    hashed = any(len(f"{lxcpath}/{n}/command") > _SUN_PATH_MAX for n in names)
    out: dict[str, tuple[str, int | None]] = {n: ("STOPPED", None) for n in names}
    if not (live & set(names)) and not hashed:
        return out
    argv = ["lxc-ls", "-P", str(lxcpath), "--active", "--fancy", "-F", "NAME,STATE,PID"]
    for line in _run(argv, timeout=30).stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in out:
            pid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            out[parts[0]] = (parts[1], pid)
    return out


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


#: ``lxcri exec``'s and the healthcheck's environment reaches the init shim
#: (``--exec``) as ``LXCRI_ENV_<n>=NAME=VALUE``, kept by lxc-attach's
#: ``--keep-var``: never on a command line, which ``ps`` shows every host user.
EXEC_ENV_PREFIX = "LXCRI_ENV_"

#: Variables that steer the host's dynamic loader or libc (glibc's unsecure
#: list): a container's value must not reach the host's lxc-attach process,
#: so these alone still travel as ``-v`` (paths and options, not secrets).
_HOST_UNSAFE = frozenset(
    (
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    )
)


def _host_unsafe(name: str) -> bool:
    return name in _HOST_UNSAFE or name.startswith(("LD_", "MALLOC_"))


def _attach_tool() -> str:
    # absolute: the container's PATH (kept for it) becomes lxc-attach's own PATH
    return shutil.which("lxc-attach") or "lxc-attach"


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(EXEC_ENV_PREFIX)}


def attach_argv(
    name: str,
    lxcpath: Path,
    argv: Sequence[str],
    env: Sequence[str] = (),
    uid: int | None = None,
    gid: int | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``lxc-attach`` running ``argv`` in the container with exactly ``env``, and
    the environment to run it with: each value is in lxc-attach's environment
    and named by ``--keep-var`` (``-v NAME=VALUE`` would show ``-e`` secrets in
    ``ps``). For a container whose shim has no ``--exec`` (an older lxcri's);
    :func:`shim_exec_argv` otherwise."""
    out = [_attach_tool(), "-n", name, "-P", str(lxcpath), "--clear-env"]
    run_env: dict[str, str] = {}
    for item in env:
        key, eq, value = item.partition("=")
        if not eq or _host_unsafe(key):
            out += ["-v", item]
        else:
            run_env[key] = value
            out += ["--keep-var", key]
    if uid is not None:
        out += ["-u", str(uid)]
    if gid is not None:
        out += ["-g", str(gid)]
    return [*out, "--", *argv], run_env


def shim_exec_argv(
    name: str,
    lxcpath: Path,
    argv: Sequence[str],
    env: Sequence[str],
    uid: int,
    gid: int,
    groups: Sequence[int],
    cwd: str,
    shim_sets_ids: bool,
    shim: str,
) -> tuple[list[str], dict[str, str]]:
    """``lxc-attach`` running the init shim's ``--exec``, as ``lxcri exec`` does,
    and its environment (the host's plus ``LXCRI_ENV_<n>``): the shim sets
    exactly ``env``, the ids and ``cwd`` in the container."""
    run_env = _base_env()
    out = [_attach_tool(), "-n", name, "-P", str(lxcpath), "--clear-env"]
    for i, item in enumerate(env):
        run_env[f"{EXEC_ENV_PREFIX}{i}"] = item
        out += ["--keep-var", f"{EXEC_ENV_PREFIX}{i}"]
    if shim_sets_ids:  # attach as root; the shim sets groups, gid, uid
        out += ["-u", "0", "-g", "0"]
        group_list = ",".join(str(g) for g in groups)
    else:  # without CAP_SETUID the shim cannot switch: lxc-attach does, without groups
        out += ["-u", str(uid), "-g", str(gid)]
        group_list = ""
    return [*out, "--", shim, "--exec", str(uid), str(gid), group_list, cwd, "--", *argv], run_env


def shim_has_exec(shim: Path) -> bool:
    """Whether the container's init shim (``STATE/ctr/init``) knows ``--exec``:
    an empty file is the mount point of the shared (current) shim; a copy of
    its own is a privileged container's, or an older lxcri's."""
    try:
        if not shim.is_file() or not shim.stat().st_size:
            return True
        return EXEC_ENV_PREFIX.encode() in shim.read_bytes()
    except OSError:
        return True
