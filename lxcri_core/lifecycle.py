"""Backend-neutral rules of a container's life, written once over ``Backend``.

Every front end (CLI, dashboard, exporter) gets the same behaviour on every
backend: ``--rm`` with a restart policy is refused (the container would be
removed by the first exit the policy means to restart from), a restart policy
needs a detached container (only a supervisor restarts, and only a detached
container has one), ``run --rm`` removes the container whatever way its
process ended, and following the logs ends when the container does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lxcri_core.backend import (
    Backend,
    Container,
    CreateRequest,
    CtRef,
    UpgradeRequest,
    UpgradeResult,
    require,
)
from lxcri_core.errors import SpecError

if TYPE_CHECKING:
    from lxcri_core.spec.options import RunOptions


def check_run(opts: RunOptions, *, detach: bool, auto_remove: bool) -> None:
    """Refuse, before anything is created, what cannot do what was asked (``SpecError``)."""
    restart = opts.restart
    if restart in (None, "", "no"):
        return
    if auto_remove:
        raise SpecError("--rm and --restart cannot be combined")
    if not detach:
        raise SpecError(
            f"--restart {restart} needs -d: a foreground container is not restarted; "
            "use `lxcri run -d --restart ...` and `lxcri logs -f`"
        )


@dataclasses.dataclass(frozen=True)
class RunResult:
    container: Container
    #: the process's exit status (128+N for a signal); None for a detached run
    exit_code: int | None
    #: the container was removed after its process ended (``--rm`` in the foreground)
    removed: bool


def run(backend: Backend, req: CreateRequest, *, detach: bool, stdin: bool = False) -> RunResult:
    """Create and start: detached (under the backend's supervision), or in the
    foreground until the process ends, then removed when ``req.auto_remove``."""
    check_run(req.options, detach=detach, auto_remove=req.auto_remove)
    # what the backend cannot do is refused before a container exists
    if not detach:
        require(backend, "foreground")
    if req.auto_remove:
        require(backend, "auto-remove")
    if req.options.publish or req.options.publish_all:
        require(backend, "publish")
    ct = backend.create(req)
    ref = CtRef(str(ct.vmid))
    if detach:
        try:
            backend.start(ref)
        except BaseException:
            if req.auto_remove:  # --rm: nothing is left of a run that never ran
                backend.remove(ref, force=True)
            raise
        return RunResult(ct, None, False)
    try:
        rc = backend.run_foreground(ref, stdin=stdin)
    finally:
        if req.auto_remove:
            backend.remove(ref, force=True)
    # killed by a signal: 128+N as a shell (and docker) reports it
    return RunResult(ct, 128 - rc if rc < 0 else rc, req.auto_remove)


def logs(
    backend: Backend, ref: CtRef, *, follow: bool = False, tail: int | None = None
) -> Iterator[bytes]:
    """The container's output; with ``follow``, new output until the container ends
    (every backend's ``logs`` ends its follow then: this is the one place front ends call)."""
    yield from backend.logs(ref, follow=follow, tail=tail)


#: How long a new image's process must keep running, when it has no healthcheck,
#: before an upgrade counts as done (an image whose process exits at once fails
#: within this; a slower failure is the restart policy's to handle).
SETTLE_SECONDS = 3.0


def upgrade(
    backend: Backend,
    ref: CtRef,
    req: UpgradeRequest,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> UpgradeResult:
    """``backend.upgrade``, then, when it started the container again, wait until the
    new image runs (and is healthy, when it has a healthcheck) within
    ``req.health_timeout``; otherwise roll back by itself and say why."""
    result = backend.upgrade(ref, req)
    if result.outcome != "upgraded" or not result.started:
        return result
    target = CtRef(str(result.vmid))
    why = wait_healthy(backend, target, req.health_timeout, clock=clock, sleep=sleep)
    if why is None:
        return result
    back = backend.rollback(target)
    if not back.started:  # the new image's process had ended: the old one ran before
        backend.start(target)
        back = dataclasses.replace(back, started=True)
    return dataclasses.replace(
        result,
        outcome="rolled-back",
        message=f"{why}; rolled back to {back.new_digest}",
        started=back.started,
    )


def wait_healthy(
    backend: Backend,
    ref: CtRef,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """None once ``ref`` runs (and is healthy, when it has a healthcheck); else why not.

    Without a healthcheck the process must still be running, never restarted,
    ``SETTLE_SECONDS`` after the start (or ``timeout``, when shorter)."""
    start = clock()
    first = backend.status(ref)
    settle = start + min(SETTLE_SECONDS, timeout)
    while True:
        st = backend.status(ref)
        if st.status == "exited" or st.error:
            code = "" if st.exit_code is None else f" with status {st.exit_code}"
            return f"the new image's process exited{code}" + (f": {st.error}" if st.error else "")
        if st.restarts > first.restarts or st.status == "restarting":
            return "the new image's process exited and was restarted"
        if st.health == "unhealthy":
            return "the new image's healthcheck failed"
        now = clock()
        if st.status == "running" and (
            st.health == "healthy" or (st.health == "" and now >= settle)
        ):
            return None
        if now - start >= timeout:
            if st.health == "starting":
                return f"the new image's healthcheck did not pass within {timeout:g} s"
            return f"the new image did not start within {timeout:g} s"
        sleep(0.2)
