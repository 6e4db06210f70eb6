"""The Proxmox guest hookscript's logic (``SCRIPT <vmid> <phase>``).

Proxmox's phases map onto lxcri's LXC hook actions: ``pre-start`` ->
``pre-start`` (mount, publish ports), ``post-stop`` -> ``post-stop``;
``post-start`` and ``pre-stop`` need nothing. A guest is lxcri's when
``$LXCRI_ROOT/pve/<vmid>/lxcri.json`` exists (default root
``/var/lib/lxcri``); Proxmox aborts a start whose pre-start phase fails, so
errors exit non-zero and are logged to ``hooks.log`` beside that file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lxcri_core.hooks.context import MARKER, HookContext

PHASES = {"pre-start": "pre-start", "post-stop": "post-stop", "post-start": "", "pre-stop": ""}


def pve_state_dir(vmid: str, env: Mapping[str, str]) -> Path:
    return Path(env.get("LXCRI_ROOT") or "/var/lib/lxcri") / "pve" / vmid


def run_phase(vmid: str, phase: str, env: Mapping[str, str] = os.environ) -> int:
    if phase not in PHASES:
        return 0  # a phase a later Proxmox adds: not ours to fail
    sdir = pve_state_dir(vmid, env)
    if not (sdir / MARKER).is_file() or not PHASES[phase]:
        return 0
    from lxcri_core.hooks.run import run

    ctx = HookContext(
        name=vmid,
        hook_type=PHASES[phase],
        version=1,
        config_file=str(sdir / "config"),
        env=dict(env),
    )
    return run(ctx)
