"""Where lxcri's helper programs are: the hook and the exec shim.

Installed from the Debian package they live in ``/usr/lib/lxcri``; in a
checkout, in ``hooks/`` beside the package (``make`` builds the shim).
``LXCRI_LIBEXEC`` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lxcri_core.errors import BackendError

SYSTEM_LIBEXEC = Path("/usr/lib/lxcri")


def libexec(name: str) -> Path:
    candidates = []
    if os.environ.get("LXCRI_LIBEXEC"):
        candidates.append(Path(os.environ["LXCRI_LIBEXEC"]) / name)
    candidates.append(SYSTEM_LIBEXEC / name)
    candidates.append(Path(__file__).resolve().parent.parent.parent / "hooks" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise BackendError(
        f"{name} not found (looked in {', '.join(str(c.parent) for c in candidates)}); "
        "reinstall lxcri, or run `make` in a checkout"
    )


def hook_command() -> str:
    """The ``lxc.hook.*`` command: this interpreter (never a shell shim) and the hook."""
    return f"{sys.executable} {libexec('lxcri-hook')}"
