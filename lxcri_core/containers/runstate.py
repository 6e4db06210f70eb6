"""A container's runtime state files, read without a process: the supervisor's pid, JSON docs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lxcri_core.log import get_logger

log = get_logger(__name__)


#: The effective config of the ``lxcri start`` that spawned the supervisor (0600).
SUPERVISOR_CONFIG = "supervisor-config.json"


def supervisor_pid(sdir: Path) -> int | None:
    """The live supervisor's pid, or None."""
    try:
        pid = int((sdir / "supervisor.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    # a zombie or a recycled pid is not our supervisor
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"lxcri_core.containers.supervisor" in cmdline else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
