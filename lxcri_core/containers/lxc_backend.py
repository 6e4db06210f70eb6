"""``LxcBackend``: the ``Backend`` protocol over plain LXC (lxcri's own containers).

Every operation names its container by ``CtRef``: a VMID (allocated locally,
see ``vmids``), a name, or an id prefix of at least 4 characters. pct's
properties (``--net0``, ``--mpN``, ``--memory``...) are mapped onto
``RunOptions`` by ``pct_props``; what plain LXC cannot do is an error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lxcri_core.backend import (
    ALL_FEATURES,
    Container,
    ContainerStatus,
    CreateRequest,
    CtRef,
    ExecCommand,
    ExecOptions,
    Feature,
    Generation,
    UpgradeRequest,
    UpgradeResult,
)
from lxcri_core.config import Config
from lxcri_core.containers import exec as exec_
from lxcri_core.containers import generations, lifecycle, listing, pct_props, remove, settings
from lxcri_core.containers.record import load_record
from lxcri_core.errors import LxcriError
from lxcri_core.log import bind_container


class LxcBackend:
    """Plain LXC: containers in ``$LXCRI_ROOT/containers``, run by lxc-execute."""

    name = "lxc"
    features: frozenset[Feature] = ALL_FEATURES
    hint = ""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        #: VMIDs this backend created: their create checked lxcri's bridge a moment
        #: ago, so their first start (``run``) need not check it again (ip, nft)
        self._fresh: set[int] = set()

    # -- naming ------------------------------------------------------------------
    def resolve(self, ref: CtRef) -> str:
        """The container's name (``ContainerNotFound`` when none has that VMID/name/id)."""
        generations.recover_all(self.cfg)  # one directory read when nothing is pending
        return listing.find(self.cfg, ref.text)

    def container(self, ref: CtRef) -> Container:
        """VMID, name and id of ``ref`` (``CorruptState`` for an unreadable record)."""
        rec = listing.with_vmid(self.cfg, load_record(self.cfg.root, self.resolve(ref)))
        return Container(vmid=rec.vmid, name=rec.name, id=rec.id, backend=self.name)

    # -- the protocol ------------------------------------------------------------
    def create(self, req: CreateRequest) -> Container:
        from lxcri_core.containers.create import create

        opts, tags = pct_props.apply(req.options, req.pct, self.cfg.bridge)
        if req.pull == "always":
            from lxcri_core.registry import pull

            pull(self.cfg, req.image, insecure=req.insecure)
        rec = create(
            self.cfg,
            req.image,
            opts,
            storage=req.storage,
            pull_missing=req.pull != "never",
            insecure=req.insecure,
            auto_remove=req.auto_remove,
            vmid=req.vmid,
            tags=tags,
        )
        self._fresh.add(rec.vmid)
        return Container(vmid=rec.vmid, name=rec.name, id=rec.id, backend=self.name)

    def _first_start(self, ref: CtRef) -> bool:
        """Whether ``ref`` is a container this backend just created (once: True)."""
        if ref.text.isdigit() and int(ref.text) in self._fresh:
            self._fresh.discard(int(ref.text))
            return True
        return False

    def _bound(self, ref: CtRef) -> tuple[str, bind_container]:
        """The container's name, and its ``container``/``vmid`` for the log records of
        the operation."""
        name = self.resolve(ref)
        vmid = ref.vmid
        if vmid is None:
            with contextlib.suppress(LxcriError):  # unreadable: its records say its name
                vmid = load_record(self.cfg.root, name).vmid or None
        return name, bind_container(name, vmid)

    def start(self, ref: CtRef) -> None:
        fresh = self._first_start(ref)
        name, bound = self._bound(ref)
        with bound:
            lifecycle.start(self.cfg, name, bridge_checked=fresh)

    def stop(self, ref: CtRef, timeout: float | None = None) -> None:
        name, bound = self._bound(ref)
        with bound:
            lifecycle.stop(self.cfg, name, None if timeout is None else int(timeout))

    def shutdown(self, ref: CtRef, timeout: float | None = None) -> None:
        # an app container has no init that shuts down: its stop signal is the request
        self.stop(ref, timeout)

    def reboot(self, ref: CtRef) -> None:
        name, bound = self._bound(ref)
        with bound:
            lifecycle.restart(self.cfg, name)

    def remove(self, ref: CtRef, *, force: bool = False) -> None:
        name, bound = self._bound(ref)
        with bound:
            remove.remove(self.cfg, name, force=force)

    def status(self, ref: CtRef) -> ContainerStatus:
        return listing.status(self.cfg, self.resolve(ref))

    def list(self) -> list[ContainerStatus]:
        generations.recover_all(self.cfg)
        return listing.list_containers(self.cfg)

    def run_foreground(self, ref: CtRef, *, stdin: bool = False) -> int:
        fresh = self._first_start(ref)
        return lifecycle.run_foreground(
            self.cfg, self.resolve(ref), stdin=stdin, bridge_checked=fresh
        )

    def wait(self, ref: CtRef) -> int:
        from lxcri_core.containers.exitwait import wait_exit

        return wait_exit(self.cfg, self.resolve(ref))

    def exec_command(self, ref: CtRef, argv: Sequence[str], opts: ExecOptions) -> ExecCommand:
        return exec_.exec_argv(
            self.cfg,
            self.resolve(ref),
            list(argv),
            env=opts.env,
            user=opts.user,
            workdir=opts.workdir,
            tty=opts.tty,
        )

    def logs(self, ref: CtRef, *, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        """The process's output (``console.log``); following ends when the container does."""
        name = self.resolve(ref)
        path = exec_.logs_path(self.cfg, name)
        if not path.exists():
            return
        with open(path, "rb") as f:
            data = f.read()
            if tail is not None:
                data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail else b""
            if data:
                yield data
            while follow:
                chunk = f.read()
                if chunk:
                    yield chunk
                elif listing.status(self.cfg, name).status not in ("running", "restarting"):
                    rest = f.read()  # written between the read and the status
                    if rest:
                        yield rest
                    return
                else:
                    time.sleep(0.2)

    def config_get(self, ref: CtRef) -> dict[str, Any]:
        return settings.config_get(self.cfg, self.resolve(ref))

    def config_set(self, ref: CtRef, changes: Mapping[str, str | None]) -> None:
        settings.config_set(self.cfg, self.resolve(ref), changes)

    def upgrade(self, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
        from lxcri_core.containers import upgrade

        return upgrade.upgrade(self.cfg, self.resolve(ref), req)

    def rollback(self, ref: CtRef) -> UpgradeResult:
        from lxcri_core.containers import upgrade

        return upgrade.rollback(self.cfg, self.resolve(ref))

    def history(self, ref: CtRef) -> Sequence[Generation]:
        from lxcri_core.containers import upgrade

        return upgrade.history(self.cfg, self.resolve(ref))
