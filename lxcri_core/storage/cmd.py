"""Running the host tools the backends drive (mount, cp, zfs)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from lxcri_core.errors import StorageError
from lxcri_core.log import get_logger

log = get_logger(__name__)

#: ``run(argv) -> stdout``; tests of the parsers pass recorded output instead.
Runner = Callable[[Sequence[str]], str]


def run_cmd(argv: Sequence[str], cwd: Path | None = None) -> str:
    """Run ``argv`` and return its stdout; a failure is a StorageError naming the command."""
    log.debug("run", argv=list(argv), cwd=str(cwd) if cwd else None)
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, check=False, timeout=600
        )
    except FileNotFoundError:
        raise StorageError(
            f"{argv[0]} is not installed; install it or pick another storage backend"
        ) from None
    except subprocess.TimeoutExpired:
        raise StorageError(f"`{' '.join(argv)}` did not finish within 600 s") from None
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().replace("\n", "; ")
        raise StorageError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {msg}")
    return proc.stdout
