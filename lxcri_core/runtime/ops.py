"""The OCI lifecycle on LXC: create, start, kill, delete, exec, ps, pause, resume, update.

How a container runs. ``create`` translates the bundle, writes the LXC
config into ``ROOT/ID`` (ROOT is the lxcpath), and forks the container's
process: it blocks on ``ROOT/ID/start.fifo`` and is the pid in the pid file.
``runc create`` exits there; the process is then reparented to whoever is
the subreaper (containerd's shim). ``start`` writes to the fifo; the process
execs ``lxc-execute``, which runs LXC's ``init.lxc`` and the init shim with
the bundle's process, and exits with that process's exit status: the status
the shim reaps is the container's. The user's process never runs before
``start``. LXC's ``start-host`` hook records the container's init pid
(``init.pid``): ``kill`` signals the process under init.lxc, so that its
exit status is the signal's (128+N) as with runc.

Errors keep runc's wording where containerd matches on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import LxcriError, OciRuntimeError
from lxcri_core.runtime import state

if TYPE_CHECKING:  # the translation (and the spec model) is create's alone: start,
    # kill, delete and the rest start faster without it
    from lxcri_core.runtime.bundle import Bundle

FIFO = "start.fifo"
INIT_PID = "init.pid"
PROCESS_FILE = "runtime.json"
#: How long ``start`` waits for LXC to report the container's init.
START_TIMEOUT = 30.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_file(path: Path, data: bytes, mode: int, owner: int = 0) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        if owner:
            os.fchown(fd, owner, owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _write_pid_file(path: str, pid: int) -> None:
    """As runc: the file appears whole (a temp file renamed over it)."""
    p = Path(path).absolute()
    tmp = p.with_name(f".{p.name}.{os.getpid()}")
    tmp.write_text(str(pid))
    os.replace(tmp, p)


def _hook_script(cdir: Path, name: str, body: list[str], mode: int = 0o700) -> str:
    path = cdir / name
    _write_file(path, ("#!/bin/sh\nset -e\n" + "\n".join(body) + "\n").encode(), mode)
    return str(path)


def _ocihooks_cmd(kinds: Sequence[str], root: str, cid: str) -> str:
    return shlex.join([sys.executable, "-m", "lxcri_core.runtime.ocihooks", *kinds, root, cid])


def _mount_hook_lines(b: Bundle) -> list[str]:
    """sysctl, masked and read-only paths: in the container's namespaces before pivot_root."""
    out = ['R="$LXC_ROOTFS_MOUNT"']
    for key, value in b.sysctl.items():  # in the container's namespaces (net.* its own)
        path = "/proc/sys/" + key.replace(".", "/")
        out.append(f'printf "%s" {shlex.quote(value)} > "$R"{shlex.quote(path)}')
    for p in b.readonly:
        q = shlex.quote(p)
        out.append(
            f'if [ -e "$R"{q} ]; then mount --bind "$R"{q} "$R"{q} && '
            f'mount -o remount,bind,ro "$R"{q}; fi'
        )
    for p in b.masked:
        q = shlex.quote(p)
        out.append(
            f'if [ -d "$R"{q} ] && [ ! -L "$R"{q} ]; then '
            f'mount -t tmpfs -o ro,nosuid,nodev,noexec,size=0 tmpfs "$R"{q}; '
            f'elif [ -e "$R"{q} ] && [ ! -L "$R"{q} ]; then mount --bind /dev/null "$R"{q}; fi'
        )
    return out


def create(
    root: str,
    cid: str,
    bundle_dir: str,
    pid_file: str | None = None,
    console_socket: str | None = None,
) -> int:
    """``create``: everything ready, the process waiting for ``start``; its pid."""
    from lxcri_core.runtime.bundle import check_id, load, translate

    check_id(cid)
    bdir = Path(bundle_dir).absolute()
    b = translate(load(bdir), bdir)
    if b.spec.tty and not console_socket:
        raise OciRuntimeError(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    if console_socket and not b.spec.tty:
        raise OciRuntimeError("cannot use console socket if runc will not detach or allocate tty")
    Path(root).mkdir(mode=0o711, parents=True, exist_ok=True)
    cdir = Path(state.container_dir(root, cid))
    try:
        cdir.mkdir(mode=0o711)
    except FileExistsError:
        raise OciRuntimeError(f"container with id exists: {cid}") from None
    try:
        pid = _create_in(root, cid, cdir, bdir, b, console_socket)
    except BaseException:
        shutil.rmtree(cdir, ignore_errors=True)
        raise
    if pid_file:
        _write_pid_file(pid_file, pid)
    return pid


def _create_in(
    root: str, cid: str, cdir: Path, bdir: Path, b: Bundle, console_socket: str | None
) -> int:
    from lxcri_core.containers.inroot import resolve_in_root
    from lxcri_core.containers.paths import libexec
    from lxcri_core.spec.lxc_config import (
        ARGV_FILE,
        CTR_DIR,
        SECCOMP_FILE,
        STATE_MOUNT,
        render_lxc_config,
    )

    spec = b.spec
    owner = 0
    if spec.security.unprivileged:
        owner = next((m.host_id(0) or 0 for m in spec.security.idmaps if m.kind == "u"), 0)
    targets = {STATE_MOUNT: resolve_in_root(b.rootfs, STATE_MOUNT, create="dir", owner=owner)}
    # LXC mounts these itself, and a read-only root cannot get them at start
    for path in (spec.working_dir, "/dev", "/proc", "/sys"):
        resolve_in_root(b.rootfs, path, create="dir", owner=owner)
    resolved = [
        resolve_in_root(b.rootfs, t.target, create=t.kind, owner=owner)  # type: ignore[arg-type]
        for t in b.targets
    ]
    hooks: dict[str, str] = {}
    oci = b.hooks
    start_host = []
    # LXC runs its mount hook before start-host, so the spec's order (prestart,
    # createRuntime, createContainer) is kept by running all three here
    kinds = ("prestart", "createRuntime", "createContainer")
    if any(oci.get(k) for k in kinds):
        start_host.append(_ocihooks_cmd(kinds, root, cid))
    # last: ``start`` waits for this file, then runs poststart
    start_host += [
        f'echo "$LXC_PID" > {shlex.quote(str(cdir / (INIT_PID + ".tmp")))}',
        f"mv {shlex.quote(str(cdir / (INIT_PID + '.tmp')))} {shlex.quote(str(cdir / INIT_PID))}",
    ]
    hooks["start-host"] = _hook_script(cdir, "hook-start-host", start_host)
    mount = _mount_hook_lines(b) if (b.masked or b.readonly or b.sysctl) else []
    if mount:
        # run by the container's root (the mapped one in a user namespace): it reads and
        # runs it, only the host's root writes it
        hooks["mount"] = _hook_script(cdir, "hook-mount", mount, 0o755)
    rendered = render_lxc_config(
        spec,
        name=cid,
        rootfs_path=b.rootfs,
        state_dir=cdir,
        hooks=hooks,
        log_file=cdir / "lxc.log",
        mount_targets=targets,
    )
    lines = []
    for line in rendered.text.splitlines():
        key = line.partition(" = ")[0]
        if key == "lxc.mount.auto":
            line = f"lxc.mount.auto = {b.mount_auto}"
        elif key == "lxc.uts.name" and not b.spec.hostname:
            continue  # the host's uts namespace (kept), or the runtime's default name
        elif key == "lxc.net.0.type" and b.host_network:
            line = "lxc.net.0.type = none"
        lines.append(line)
    lines += b.lines
    if any(ln.startswith("lxc.cgroup.devices.") for ln in b.lines):
        # as runc: the nodes every container needs stay allowed after the config's rules
        from lxcri_core.spec.lxc_config import _DEVICES

        for prefix in ("lxc.cgroup", "lxc.cgroup2"):
            lines += [f"{prefix}.devices.allow = {rule}" for rule in _DEVICES]
    for idx, entry in b.mount_lines:
        from lxcri_core.spec.lxc_config import fstab_escape

        target = fstab_escape(resolved[idx]) if idx >= 0 else ""
        lines.append("lxc.mount.entry = " + entry.replace("{target}", target, 1))
    # the process's stdio are the runtime's (the shim's pipes) or the console socket's pty
    lines.append("lxc.console.path = none")
    if b.cgroup_dir:
        lines.append(f"lxc.cgroup.dir = {b.cgroup_dir}")
    (cdir / CTR_DIR).mkdir(mode=0o755)
    shutil.copyfile(libexec("lxcri-init"), cdir / CTR_DIR / "init")
    os.chmod(cdir / CTR_DIR / "init", 0o755)
    for rel, data in rendered.files.items():
        secret = rel in (ARGV_FILE, f"{CTR_DIR}/env", SECCOMP_FILE)
        _write_file(
            cdir / rel, data, 0o600 if secret else 0o644, owner if rel.startswith(CTR_DIR) else 0
        )
    _write_file(cdir / "config", ("\n".join(lines) + "\n").encode(), 0o600)
    from lxcri_core.runtime import ocihooks

    ocihooks.save(cdir, dict(b.hooks))
    (cdir / PROCESS_FILE).write_text(
        json.dumps(
            {
                "shim_sets_ids": spec.security.shim_sets_ids,
                "capabilities": list(spec.security.capabilities or ()),
            }
        )
    )
    fragment = json.dumps(
        {
            "bundle": str(bdir),
            "rootfs": str(b.rootfs),
            "created": _now(),
            "owner": "",
            "annotations": dict(b.annotations),
        }
    )[1:-1]
    os.mkfifo(cdir / FIFO, 0o600)
    pid = _fork_waiter(root, cid, cdir, console_socket)
    st = state.proc_start(pid)
    state.write(str(cdir), "created", pid, st[1] if st else 0, fragment)
    return pid


def _send_pty(console_socket: str) -> int:
    """A new pty: its master goes to the console socket (SCM_RIGHTS); the slave's fd back."""
    import socket

    master, slave = os.openpty()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(console_socket)
            socket.send_fds(s, [b"/dev/ptmx"], [master])
    except OSError as e:
        os.close(slave)
        raise OciRuntimeError(f"console socket {console_socket}: {e.strerror or e}") from None
    finally:
        os.close(master)
    return slave


def _child_stdio(slave: int | None) -> None:
    """In a forked child: a new session, the pty slave as the controlling terminal."""
    if slave is None:
        return
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _fork_waiter(root: str, cid: str, cdir: Path, console_socket: str | None) -> int:
    from lxcri_core.containers.lxc import execute_argv

    argv = execute_argv(cid, Path(root))
    exe = shutil.which(argv[0]) or argv[0]
    slave = _send_pty(console_socket) if console_socket else None
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    pid = os.fork()
    if pid == 0:  # the container's process until start
        try:
            _child_stdio(slave)
            os.closerange(3, 1 << 16)
            fd = os.open(cdir / FIFO, os.O_RDONLY | os.O_CLOEXEC)  # blocks until start
            go = os.read(fd, 1)
            os.close(fd)
            if go != b"0":  # opened and closed by delete: no start
                os._exit(0)
            os.execve(exe, argv, env)
        except BaseException:
            pass
        os._exit(127)
    if slave is not None:
        os.close(slave)
    return pid


def _wait_gone(pid: int, start: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while state.alive(pid, start):
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def _init_pid(cdir: str, st: state.State, timeout: float = 0.0) -> int | None:
    """The container's init (recorded by LXC's start-host hook), while the container lives."""
    end = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(cdir, INIT_PID).read_text())
            if state.proc_start(pid) is not None:
                return pid
        if time.monotonic() >= end or not state.alive(st.pid, st.start):
            return None
        time.sleep(0.005)


def _lxc_error(cdir: str) -> str:
    try:
        lines = Path(cdir, "lxc.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errs = [ln for ln in lines if " ERROR " in ln]
    # the first is the cause; the ones after say what failed because of it
    return errs[0].split(" - ", 2)[-1].strip() if errs else ""


def start(root: str, cid: str) -> None:
    st = state.load(root, cid)
    status = st.status
    if status == "stopped":
        raise OciRuntimeError("cannot start a container that has stopped")
    if status != "created":
        raise OciRuntimeError(f"cannot start an already {status} container")
    try:
        fd = os.open(Path(st.cdir, FIFO), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no reader: the process is gone
        raise OciRuntimeError("cannot start a container that has stopped") from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    st.save("running")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(Path(st.cdir, FIFO))
    if _init_pid(st.cdir, st, START_TIMEOUT) is None:
        if state.alive(st.pid, st.start):
            raise OciRuntimeError(f"container {cid} did not start in {START_TIMEOUT:.0f}s")
        why = _lxc_error(st.cdir)
        if why:
            raise OciRuntimeError(f"container {cid} failed to start: {why}")
    from lxcri_core.runtime import ocihooks

    hooks = ocihooks.load(Path(st.cdir))
    for i, hook in enumerate(hooks.get("poststart", ())):
        try:
            ocihooks.run_hook("poststart", i, hook, st.to_json())
        except OciRuntimeError as e:  # the spec: a warning, the container keeps running
            print(f"lxcri-runtime: warning: {e}", file=sys.stderr)


SIGNALS = {s.name: s for s in signal.Signals}


def parse_signal(text: str) -> int:
    """``9``, ``KILL`` or ``SIGKILL``, as runc takes them."""
    if text.isdigit():
        n = int(text)
        if 0 < n < 65:
            return n
    name = text.upper()
    sig = SIGNALS.get(name if name.startswith("SIG") else "SIG" + name)
    if sig is None:
        raise OciRuntimeError(f"unknown signal {text!r}")
    return int(sig)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def cgroup_pids(init_pid: int) -> list[int]:
    """Every process in the container's cgroup (its init's pids, or memory, controller)."""
    try:
        text = Path(f"/proc/{init_pid}/cgroup").read_text()
    except OSError:
        return []
    paths = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            paths[c] = path
    for ctrl in ("pids", "memory", "freezer", "cpu", ""):
        if ctrl in paths:
            base = "/sys/fs/cgroup" + (f"/{ctrl}" if ctrl else "/unified")
            try:
                procs = Path(base + paths[ctrl], "cgroup.procs").read_text()
            except OSError:
                continue
            return sorted(int(p) for p in procs.split())
    return []


def kill(root: str, cid: str, sig: int, all_: bool = False) -> None:
    st = state.load(root, cid)
    status = st.status
    if status == "stopped":
        raise OciRuntimeError("container not running")
    if status == "created":
        os.kill(st.pid, sig)
        return
    init = _init_pid(st.cdir, st, 2.0)
    if init is None:
        if not state.alive(st.pid, st.start):
            raise OciRuntimeError("container not running")
        os.kill(st.pid, sig)  # LXC's monitor forwards it to init
        return
    # without --all: the process under init.lxc (init.lxc would SIGKILL everything a
    # second after a SIGTERM; and killed itself, it reports 1, not the process's
    # 128+N); init.lxc when the process is gone
    targets = (cgroup_pids(init) if all_ else _children(init)) or [init]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    if status == "paused" and sig == signal.SIGKILL:
        _lxc(["lxc-unfreeze", "-n", cid, "-P", root])


def delete(root: str, cid: str, force: bool = False) -> None:
    try:
        st = state.load(root, cid)
    except OciRuntimeError:
        cdir = Path(state.container_dir(root, cid))
        if force:  # an aborted create may have left the directory
            shutil.rmtree(cdir, ignore_errors=True)
            return
        raise
    status = st.status
    if status in ("running", "paused") and not force:
        raise OciRuntimeError(f"cannot delete container {cid} that is not stopped: {status}")
    if status != "stopped":
        init = _init_pid(st.cdir, st)
        if status == "paused":
            _lxc(["lxc-unfreeze", "-n", cid, "-P", root])
        with contextlib.suppress(ProcessLookupError):
            os.kill(init or st.pid, signal.SIGKILL)
        if init is not None and not _wait_gone(st.pid, st.start, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(st.pid, signal.SIGKILL)
        _wait_gone(st.pid, st.start, 10)
    from lxcri_core.runtime import ocihooks

    doc = json.loads(st.to_json())
    doc["status"] = "stopped"
    for i, hook in enumerate(ocihooks.load(Path(st.cdir)).get("poststop", ())):
        try:
            ocihooks.run_hook("poststop", i, hook, json.dumps(doc))
        except OciRuntimeError as e:  # the spec: a warning, the delete goes on
            print(f"lxcri-runtime: warning: {e}", file=sys.stderr)
    shutil.rmtree(st.cdir, ignore_errors=True)


def _lxc(argv: list[str]) -> str:
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise OciRuntimeError(f"{argv[0]} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout


def pause(root: str, cid: str) -> None:
    st = state.load(root, cid)
    if st.status != "running":
        raise OciRuntimeError("container not running")
    _lxc(["lxc-freeze", "-n", cid, "-P", root])
    st.save("paused")


def resume(root: str, cid: str) -> None:
    st = state.load(root, cid)
    if st.status != "paused":
        raise OciRuntimeError("container not paused")
    _lxc(["lxc-unfreeze", "-n", cid, "-P", root])
    st.save("running")


def ps(root: str, cid: str) -> list[int]:
    st = state.load(root, cid)
    if st.status in ("stopped", "created"):
        return []
    init = _init_pid(st.cdir, st)
    return cgroup_pids(init) if init else []


def update(root: str, cid: str, resources: dict[str, object]) -> None:
    """``update --resources F``: the cgroup v1 keys (or v2 on a v2 host) set live."""
    from lxcri_core.runtime.resources import resource_lines

    st = state.load(root, cid)
    if st.status == "stopped":
        raise OciRuntimeError("container not running")
    prefix = "lxc.cgroup." if os.path.isdir("/sys/fs/cgroup/memory") else "lxc.cgroup2."
    for line in resource_lines(resources):
        key, _, value = line.partition(" = ")
        if key.startswith(prefix) and ".devices." not in key:
            _lxc(["lxc-cgroup", "-n", cid, "-P", root, key[len(prefix) :], value])


def exec_(
    root: str,
    cid: str,
    process: dict[str, object],
    detach: bool = False,
    pid_file: str | None = None,
    console_socket: str | None = None,
) -> int:
    """``exec``: the process in the running container; its pid (detached) or exit status."""
    from lxcri_core.containers.lxc import shim_exec_argv
    from lxcri_core.runtime import bundle, fields
    from lxcri_core.spec.lxc_config import DEFAULT_INIT_SHIM

    st = state.load(root, cid)
    if st.status != "running":
        raise OciRuntimeError(f"cannot exec in a {st.status} container")
    info = json.loads(Path(st.cdir, PROCESS_FILE).read_text())
    user = bundle.process_user(process)
    caps = bundle.capabilities(
        fields.obj(process.get("capabilities"), "process.capabilities"), user.uid
    )
    if "capabilities" in process and set(caps) != set(info["capabilities"]):
        raise OciRuntimeError(
            "process.capabilities: an exec'd process has the container's bounding set in LXC"
        )
    args = fields.argv_items(process.get("args"), "process.args")
    if not args:
        raise OciRuntimeError("process.args: is required and must not be empty")
    env = fields.argv_items(process.get("env"), "process.env")
    cwd = fields.text(process.get("cwd", "/"), "process.cwd")
    tty = process.get("terminal") is True
    if tty and not console_socket:
        raise OciRuntimeError(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    argv, env_run = shim_exec_argv(
        cid,
        Path(root),
        args,
        env,
        user.uid,
        user.gid,
        user.additional_gids,
        cwd,
        bool(info["shim_sets_ids"]),
        DEFAULT_INIT_SHIM,
    )
    slave = _send_pty(console_socket) if console_socket and tty else None
    pid = os.fork()
    if pid == 0:
        try:
            _child_stdio(slave)
            os.closerange(3, 1 << 16)
            os.execve(argv[0], argv, env_run)
        except BaseException:
            pass
        os._exit(127)
    if slave is not None:
        os.close(slave)
    if pid_file:
        _write_pid_file(pid_file, pid)
    if detach:
        return pid
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if status else 0


def features() -> dict[str, object]:
    from lxcri_core.runtime.bundle import HOOK_KINDS, OCI_VERSION_MAX
    from lxcri_core.runtime.mounts import MOUNT_FLAGS

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": [h for h in HOOK_KINDS if h != "startContainer"],
        "mountOptions": sorted(MOUNT_FLAGS),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": [f"CAP_{c}" for c in _cap_bits()],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.lxcri.runtime": "lxc"},
    }


def _cap_bits() -> tuple[str, ...]:
    from lxcri_core.security.caps import CAP_BITS

    return CAP_BITS


def error_text(e: BaseException) -> str:
    return e.msg if isinstance(e, LxcriError) else str(e)
