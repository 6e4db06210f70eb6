"""One container API over every platform: plain LXC, Proxmox VE local, Proxmox VE API.

Every front end (the CLI, the dashboard, the exporter, the OCI runtime) goes
through ``Backend``; none calls an engine module directly. A container is
named by ``CtRef``: its numeric VMID (every backend has one; plain LXC
allocates them locally from 100) or its name. Status comes in bulk
(``list``: one read for all containers, no process per container), so a
dashboard can refresh hundreds of them cheaply.

The plain-LXC backend lives in ``lxcri_core.containers``; the Proxmox
backends live in ``lxcri_pve`` (the ``plugin/`` folder) and are imported by
``open_backend`` only when asked for, so core stays free of them.

Backend-neutral rules (``--rm`` with ``--restart``, ``run --rm``'s
orchestration, ``logs -f`` ending with the container) are written once, in
``lxcri_core.lifecycle`` over this protocol, never in a front end.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lxcri_core.errors import BackendError

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.spec.model import PortMapping
    from lxcri_core.spec.options import RunOptions

#: Module and class of each backend, imported on first use.
_BACKENDS: dict[str, str] = {
    "lxc": "lxcri_core.containers.lxc_backend:LxcBackend",
    "pve-local": "lxcri_pve.backends.pve_local:PveLocalBackend",
    "pve-api": "lxcri_pve.backends.pve_api:PveApiBackend",
}

State = Literal["created", "running", "paused", "restarting", "exited"]

#: What a backend may lack (``Backend.features``), so a front end can refuse or grey out
#: an action before anything is created: running in the foreground (with ``wait`` and
#: ``run --rm``), exec, the process's output, published ports (``-p``).
Feature = Literal["foreground", "auto-remove", "exec", "logs", "publish"]
ALL_FEATURES: frozenset[Feature] = frozenset(
    ("foreground", "auto-remove", "exec", "logs", "publish")
)
_FEATURE_TEXT: dict[Feature, str] = {
    "foreground": "running a container in the foreground",
    "auto-remove": "--rm",
    "exec": "exec",
    "logs": "a container's output",
    "publish": "publishing ports (-p/-P)",
}


@dataclass(frozen=True)
class CtRef:
    """A container as a person names it: a VMID (all digits) or a name (or an id prefix)."""

    text: str

    @property
    def vmid(self) -> int | None:
        return int(self.text) if self.text.isdigit() else None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class CreateRequest:
    """Everything ``create``/``run`` needs, on any backend."""

    #: Image reference (pulled into lxcri's store first when missing).
    image: str
    #: docker-style options (``-p``, ``-v``, ``-e``, ``--restart``, ...).
    options: RunOptions
    #: The VMID to use; None: the next free one.
    vmid: int | None = None
    #: pct-style properties, as pct takes them: ``net0``, ``mp0``, ``memory``,
    #: ``cores``, ``hostname``, ``tags``, ... (``key -> property string``).
    pct: Mapping[str, str] = field(default_factory=dict)
    pull: Literal["missing", "always", "never"] = "missing"
    insecure: bool = False
    #: ``run --rm``: remove the container when its process has ended.
    auto_remove: bool = False
    #: where the rootfs goes: plain LXC's ``dir``/``overlay``/``zfs`` (None: the
    #: configured default); a Proxmox storage id on the Proxmox backends.
    storage: str | None = None


@dataclass(frozen=True)
class Container:
    """What ``create`` made."""

    vmid: int
    name: str
    #: lxcri's own id (64 hex) for plain LXC; ``str(vmid)`` on Proxmox.
    id: str
    backend: str
    node: str = ""


@dataclass(frozen=True)
class ContainerStatus:
    """One container as ``list``/``status`` report it (``--output json`` as is)."""

    vmid: int
    name: str
    id: str
    status: State
    image: str = ""
    image_digest: str = ""
    #: pct's Lock column (``create``, ``backup``, ``migrate``, ...), "" when none.
    lock: str = ""
    health: str = ""  # "", starting, healthy, unhealthy
    exit_code: int | None = None
    restarts: int = 0
    ipv4: str = ""
    ipv6: str = ""
    ports: tuple[PortMapping, ...] = ()
    created: str = ""
    started_at: str = ""
    finished_at: str = ""
    pid: int | None = None
    storage: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    node: str = ""
    #: docker's STATUS column: "Up 3 minutes (healthy)", "Exited (137) 5 minutes ago"
    status_text: str = ""
    #: why the last start failed, else ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document (every field, ports as objects)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class UpgradeRequest:
    """``lxcri upgrade``'s options, on any backend."""

    #: the new image; None: the container's own reference, resolved again
    image: str | None = None
    #: ``always``: ask the registry for the reference's digest now; ``missing``: the
    #: store's image when there is one; ``never``: the store's only
    pull: Literal["missing", "always", "never"] = "always"
    insecure: bool = False
    #: seconds the new image's process has to be running (and healthy, when it has a
    #: healthcheck) before the upgrade counts as done; otherwise it is rolled back
    health_timeout: float = 60.0


Outcome = Literal["upgraded", "unchanged", "rolled-back", "would-upgrade", "failed"]


@dataclass(frozen=True)
class UpgradeResult:
    """What ``upgrade``/``rollback``/``auto-update`` did to one container."""

    vmid: int
    name: str
    image: str
    old_digest: str
    new_digest: str
    outcome: Outcome
    #: why it was rolled back or failed; "already at sha256:..." when unchanged
    message: str = ""
    #: the backend started the container again after the swap (it was running before)
    started: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Generation:
    """One root filesystem a container has had (``lxcri history``), newest first."""

    number: int
    image: str
    image_digest: str
    #: when this generation was made (created, or upgraded to)
    created: str
    current: bool
    #: where its rootfs is kept: a dataset, a directory or a Proxmox volume id
    rootfs: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ExecOptions:
    """``exec``'s options: as docker exec (``-u``, ``-w``, ``-e``, ``-t``, ``-i``)."""

    user: str = ""
    workdir: str | None = None
    env: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False


@dataclass(frozen=True)
class ExecCommand:
    """The host command that runs an exec: ``argv`` with the environment ``env``."""

    argv: list[str]
    env: dict[str, str]


class Backend(Protocol):
    """What every platform offers; errors are ``LxcriError`` subclasses
    (``ContainerNotFound`` for an unknown ref, ``BackendError`` otherwise)."""

    name: str
    #: what of ``Feature`` this backend can do (``ALL_FEATURES`` on the local ones)
    features: frozenset[Feature]
    #: where what it cannot do can be done instead ("" when it can do everything)
    hint: str

    def create(self, req: CreateRequest) -> Container: ...
    def start(self, ref: CtRef) -> None: ...
    def stop(self, ref: CtRef, timeout: float | None = None) -> None:
        """Stop now: the stop signal, then SIGKILL after ``timeout`` (the container's own)."""
        ...

    def shutdown(self, ref: CtRef, timeout: float | None = None) -> None:
        """Ask the container to end (pct shutdown); same as stop for an app container."""
        ...

    def reboot(self, ref: CtRef) -> None: ...
    def remove(self, ref: CtRef, *, force: bool = False) -> None: ...
    def status(self, ref: CtRef) -> ContainerStatus: ...
    def list(self) -> list[ContainerStatus]:
        """Every container of this backend, read in bulk."""
        ...

    def run_foreground(self, ref: CtRef, *, stdin: bool = False) -> int:
        """Start and wait, the process's output on this process's stdout; its exit status."""
        ...

    def wait(self, ref: CtRef) -> int: ...
    def exec_command(self, ref: CtRef, argv: Sequence[str], opts: ExecOptions) -> ExecCommand: ...
    def logs(
        self, ref: CtRef, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]: ...
    def config_get(self, ref: CtRef) -> dict[str, Any]:
        """The container's configuration as pct shows it (``pct config``)."""
        ...

    def config_set(self, ref: CtRef, changes: Mapping[str, str | None]) -> None:
        """Change pct-style properties (``None`` deletes one), as ``pct set``."""
        ...

    def upgrade(self, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
        """Move the container to ``req.image``'s current digest, keeping its volumes,
        network, ports, limits and user settings; the old rootfs is kept as a
        generation. Stops it first; starts it again when it was running
        (``started``). "unchanged" when the digest is the one it runs. Checking
        that the new image runs, and rolling back, is ``lifecycle.upgrade``'s."""
        ...

    def rollback(self, ref: CtRef) -> UpgradeResult:
        """Return to the previous generation (the current one is discarded); starts
        it again when it was running."""
        ...

    def history(self, ref: CtRef) -> Sequence[Generation]:
        """The container's generations, the current one first."""
        ...


def require(backend: Backend, feature: Feature) -> None:
    """Raise BackendError, naming where else to do it, unless ``backend`` can do ``feature``."""
    if feature not in backend.features:
        hint = f"; {backend.hint}" if backend.hint else ""
        raise BackendError(
            f"{_FEATURE_TEXT[feature]} is not possible on the {backend.name} backend{hint}"
        )


def default_backend(cfg: Config) -> str:
    """pve-local on a Proxmox VE host (``pve_root`` exists), else plain LXC."""
    if cfg.backend:
        return cfg.backend
    return "pve-local" if (cfg.pve_root / "nodes").is_dir() else "lxc"


def open_backend(cfg: Config, name: str | None = None) -> Backend:
    """The backend ``name`` (default: ``cfg.backend``, else ``default_backend``)."""
    chosen = name or default_backend(cfg)
    target = _BACKENDS.get(chosen)
    if target is None:
        raise BackendError(f"unknown backend {chosen!r}; use one of {', '.join(_BACKENDS)}")
    module, _, cls = target.partition(":")
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise BackendError(f"backend {chosen} is not available: {e}") from None
    backend: Backend = backend_cls(cfg)
    return backend
