"""Upgrade and roll back: the one place the dashboard calls ``Backend.upgrade`` and
``Backend.rollback`` (built beside it; a backend without them says so)."""

from __future__ import annotations

from typing import Any

from lxcri_tui.source import Source

from lxcri_core.backend import CtRef
from lxcri_core.errors import BackendError


def _backend(source: Source) -> Any:
    backend = getattr(source, "backend", None)
    if backend is None:
        raise BackendError("this data source has no backend")
    return backend


def _said(r: Any) -> str:
    """An UpgradeResult in one line: ``web (101): upgraded sha256:ab… -> sha256:cd…``."""
    old, new = str(r.old_digest)[:19], str(r.new_digest)[:19]
    change = f" {old} -> {new}" if old != new else ""
    message = f" ({r.message})" if r.message else ""
    return f"{r.name} ({r.vmid}): {r.outcome}{change}{message}"


def upgrade(source: Source, vmid: int) -> str:
    """Pull the container's image again and recreate it from it (rolled back unless it
    comes up healthy)."""
    backend = _backend(source)
    if not hasattr(backend, "upgrade"):
        raise BackendError(f"the {backend.name} backend cannot upgrade containers yet")
    from lxcri_core.backend import UpgradeRequest  # type: ignore[attr-defined,unused-ignore]

    return _said(backend.upgrade(CtRef(str(vmid)), UpgradeRequest()))


def rollback(source: Source, vmid: int) -> str:
    """Back to the image the container ran before its last upgrade."""
    backend = _backend(source)
    if not hasattr(backend, "rollback"):
        raise BackendError(f"the {backend.name} backend cannot roll containers back yet")
    return _said(backend.rollback(CtRef(str(vmid))))
