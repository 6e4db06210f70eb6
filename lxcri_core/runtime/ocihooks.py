"""The OCI hooks: run in the spec's order, the container's state on stdin.

``prestart``, ``createRuntime`` and ``createContainer`` run from LXC's
``start-host`` hook, in that order (the container's namespaces exist, its
process has not started; LXC's ``mount`` hook would come before the other
two). ``createContainer`` runs entered into the container's namespaces but
the mount namespace (``nsenter``), so that its path resolves on the host as
the spec says. ``poststart`` runs from ``lxcri-runtime start``, ``poststop``
from ``delete``. LXC hooks call ``python -m lxcri_core.runtime.ocihooks KIND... ROOT ID``;
a failing hook there fails the start, as the spec asks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lxcri_core.errors import OciRuntimeError
from lxcri_core.runtime.hookspec import Hook

#: The bundle's hooks, as ``create`` saved them in the container's directory.
HOOKS_FILE = "hooks.json"


def save(cdir: Path, hooks: dict[str, tuple[Hook, ...]]) -> None:
    doc = {
        kind: [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout} for h in hs]
        for kind, hs in hooks.items()
        if hs
    }
    # private: a hook's environment may hold credentials (a CNI plugin's, say)
    fd = os.open(cdir / HOOKS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc))


def load(cdir: Path) -> dict[str, list[Hook]]:
    try:
        doc = json.loads((cdir / HOOKS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {
        kind: [Hook(h["path"], tuple(h["args"]), tuple(h["env"]), h["timeout"]) for h in hs]
        for kind, hs in doc.items()
    }


def run_hook(kind: str, index: int, hook: Hook, state_json: str, enter_pid: int = 0) -> None:
    """Run one hook; OciRuntimeError when it fails or runs past its timeout.

    ``enter_pid``: run it in that process's namespaces, its mount namespace excepted."""
    argv = list(hook.args) or [hook.path]
    executable = hook.path
    if enter_pid:
        import shutil

        nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        argv = [nsenter, "-t", str(enter_pid), "-n", "-u", "-i", "-p", "-C", "--", hook.path]
        argv += list(hook.args[1:])
        executable = nsenter
    env = dict(e.split("=", 1) for e in hook.env if "=" in e)
    try:
        proc = subprocess.run(
            argv,
            executable=executable,
            input=state_json.encode(),
            env=env,
            timeout=hook.timeout,
            capture_output=True,
            close_fds=True,
        )
    except subprocess.TimeoutExpired:
        raise OciRuntimeError(
            f"{kind} hook #{index} ({hook.path}) did not finish in {hook.timeout}s"
        ) from None
    except OSError as e:
        raise OciRuntimeError(f"{kind} hook #{index} ({hook.path}): {e.strerror}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise OciRuntimeError(
            f"{kind} hook #{index} ({hook.path}) failed with exit status "
            f"{proc.returncode}: {err[0][:200]}"
        )


def run_kinds(cdir: Path, kinds: Sequence[str], state_json: str, pid: int = 0) -> None:
    hooks = load(cdir)
    for kind in kinds:
        for i, hook in enumerate(hooks.get(kind, ())):
            run_hook(kind, i, hook, state_json, pid if kind == "createContainer" else 0)


def main(argv: Sequence[str]) -> int:
    """``KIND... ROOT ID``, from an LXC hook (LXC_PID is the container's init)."""
    from lxcri_core.runtime import state

    *kinds, root, cid = argv
    try:
        st = state.load(root, cid)
        pid = int(os.environ.get("LXC_PID", "0") or 0)
        doc = json.loads(st.to_json())
        doc["pid"] = pid or st.pid
        doc["status"] = "creating"  # as runc: the container is being created
        run_kinds(Path(st.cdir), kinds, json.dumps(doc), pid)
    except OciRuntimeError as e:
        print(f"lxcri-runtime: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
