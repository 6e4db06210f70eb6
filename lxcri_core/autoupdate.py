"""``lxcri auto-update``: podman's auto-update, for every backend.

A container opts in with the label ``lxcri.auto-update=registry`` (``--auto-update
registry`` on create/run, or the label in a stack file). For each, the registry is
asked what its reference's tag names now (one HEAD of the manifest: nothing is
downloaded when nothing changed); a container whose digest moved is upgraded
through ``lifecycle.upgrade``, so a new image that does not start, or does not
become healthy within the health timeout, is rolled back by itself.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

from lxcri_core.backend import (
    Backend,
    ContainerStatus,
    CtRef,
    Outcome,
    UpgradeRequest,
    UpgradeResult,
)
from lxcri_core.config import Config
from lxcri_core.errors import LxcriError
from lxcri_core.log import get_logger

log = get_logger(__name__)

#: The label that opts a container in, and the one policy there is.
LABEL = "lxcri.auto-update"
POLICY = "registry"


def opted_in(backend: Backend) -> list[ContainerStatus]:
    return [c for c in backend.list() if c.labels.get(LABEL) == POLICY]


def _local(cfg: Config, image: str) -> tuple[str, str] | None:
    """What the store's tag ``image`` names: (the registry's digest for it, the manifest's)."""
    from lxcri_core.registry.pull import INDEX_ANNOTATION
    from lxcri_core.store import Store

    with contextlib.suppress(LxcriError, OSError):
        store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout)
        desc = store.lookup(image).descriptor
        return desc.annotations.get(INDEX_ANNOTATION, desc.digest), desc.digest
    return None


def moved(cfg: Config, ct: ContainerStatus, remote: str) -> bool:
    """Whether the tag's digest ``remote`` is another image than the one ``ct`` runs."""
    if remote == ct.image_digest:
        return False
    local = _local(cfg, ct.image)
    # a multi-platform tag names an index: unchanged when the store's copy of the tag
    # is that index and its manifest for this host is the one the container runs
    return not (local is not None and local == (remote, ct.image_digest))


def _result(
    ct: ContainerStatus, outcome: Outcome, new: str = "", message: str = ""
) -> UpgradeResult:
    return UpgradeResult(
        ct.vmid, ct.name, ct.image, ct.image_digest, new or ct.image_digest, outcome, message
    )


def auto_update(
    cfg: Config,
    backend: Backend,
    *,
    dry_run: bool = False,
    insecure: bool = False,
    health_timeout: float = 60.0,
    upgrade: Callable[[Backend, CtRef, UpgradeRequest], UpgradeResult] | None = None,
) -> Iterator[UpgradeResult]:
    """One result per opted-in container, as each is done."""
    from lxcri_core import lifecycle
    from lxcri_core.registry.remote import remote_digest

    do = upgrade or lifecycle.upgrade
    for ct in opted_in(backend):
        result = functools.partial(_result, ct)
        try:
            remote = remote_digest(cfg, ct.image, insecure=insecure)
            if not moved(cfg, ct, remote):
                yield result("unchanged", message=f"already at {ct.image_digest}")
                continue
            if dry_run:
                yield result("would-upgrade", remote, f"{ct.image} now names {remote}")
                continue
            req = UpgradeRequest(pull="always", insecure=insecure, health_timeout=health_timeout)
            yield do(backend, CtRef(str(ct.vmid)), req)
        except LxcriError as e:
            log.warning("auto-update failed", name=ct.name, vmid=ct.vmid, error=str(e))
            yield result("failed", message=str(e))
