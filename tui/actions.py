"""Upgrade and roll back: the one place the dashboard calls them, through
``lifecycle.upgrade`` (as ``lxcri upgrade`` does: a new image that does not come
up, or not healthy, is rolled back by itself) and ``Backend.rollback``."""

from __future__ import annotations

from typing import Any

from lxcri_tui.source import Source

from lxcri_core.backend import CtRef, UpgradeResult
from lxcri_core.errors import BackendError


def _backend(source: Source) -> Any:
    backend = getattr(source, "backend", None)
    if backend is None:
        raise BackendError("this data source has no backend")
    return backend


def _said(r: UpgradeResult) -> str:
    """An UpgradeResult in one line: ``web (101): upgraded sha256:ab… -> sha256:cd…``."""
    old, new = str(r.old_digest)[:19], str(r.new_digest)[:19]
    change = f" {old} -> {new}" if old != new else ""
    message = f" ({r.message})" if r.message else ""
    return f"{r.name} ({r.vmid}): {r.outcome}{change}{message}"


def upgrade(source: Source, vmid: int) -> str:
    """The container's reference asked of its registry again; when its digest moved, the
    container moves to it (rolled back unless it comes up, and healthy)."""
    from lxcri_core import lifecycle
    from lxcri_core.backend import UpgradeRequest

    return _said(lifecycle.upgrade(_backend(source), CtRef(str(vmid)), UpgradeRequest()))


def rollback(source: Source, vmid: int) -> str:
    """Back to the image the container ran before its last upgrade."""
    return _said(_backend(source).rollback(CtRef(str(vmid))))
