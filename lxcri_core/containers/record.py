"""What lxcri keeps about one container, beside its LXC config.

Layout of ``$LXCRI_ROOT/containers/NAME/`` (also LXC's ``lxcpath/NAME``):

- ``config``        the LXC config (rendered from the spec);
- ``lxcri.json``    this record; its presence marks the container as lxcri's
                    for the hooks, so it is written last on create;
- ``process.json``  the exact process, for people;
- ``ctr/``          mounted read-only at ``/.lxcri``: ``argv``, ``env`` (0400, the
                    process's user's), ``init`` (the mount point of the shared
                    shim ``ROOT/lib/lxcri-init``; a privileged container's own copy);
- ``rootfs/``       the mount point of the rootfs (overlay, or a bind mount of
                    the dir/zfs backend's), mounted by the pre-start hook;
- ``volumes/N``, ``volumes.json``  an unprivileged container's volumes, mounted
                    there by the pre-start hook (see ``containers.private``);
- ``supervisor-config.json``  the config the supervisor runs with (0600);
- ``console.log``   the process's output; ``hooks.log`` what the hooks did;
- ``console.times`` when console.log grew (offset, time), for ``logs -t``;
- ``supervisor.pid`` / ``health.json`` / ``exit.json`` / ``started.json``
                    runtime state (see ``status.derive_status``);
- ``stop.requested`` / ``stop.killed`` markers of a stop in progress.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_core.containers.serial import from_dict, to_dict
from lxcri_core.errors import BackendError, ContainerNotFound, CorruptState
from lxcri_core.fsutil import atomic_write
from lxcri_core.ids import ID_RE, check_id
from lxcri_core.spec.model import ContainerSpec

if TYPE_CHECKING:
    from lxcri_core.config import Config

RECORD = "lxcri.json"
#: Written by `lxcri stop` before stopping: the supervisor must not restart.
STOP_REQUESTED = "stop.requested"
#: Written just before a stop escalates to SIGKILL: the run's exit status is 137.
STOP_KILLED = "stop.killed"
#: When the current (or last) run started; its presence says the container ran.
STARTED = "started.json"
#: container names follow the one id rule (lxcri_core.ids)
NAME_RE = ID_RE


@dataclass(frozen=True)
class ContainerRecord:
    """A container as lxcri created it."""

    id: str
    name: str
    image: str
    image_digest: str
    storage: str
    rootfs: str
    created: str
    spec: ContainerSpec
    bridge: str = ""
    ipv4: str = ""
    ipv6: str = ""
    auto_remove: bool = False
    #: the overlay the pre-start hook mounts as the rootfs (mountsys.overlay_record);
    #: empty when the backend's rootfs is a plain directory. Records of lxcri
    #: before 0.1.1 hold a mount(8) argv (+ working directory last) instead.
    mount: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    #: the numeric id pct-style commands take (``lxcri start 100``), unique on this
    #: host, allocated from 100 (``vmids``); 0 in records of lxcri before 0.2: such
    #: a record gets one the first time it is read (``vmids.ensure_vmid``)
    vmid: int = 0
    #: pct's tags (``--tags a;b``), in the order given
    tags: tuple[str, ...] = ()
    #: the options the container was created with (``RunOptions`` as JSON, the
    #: environment resolved): ``upgrade`` builds the new image's spec from them, so
    #: what the user set wins over the new image. Empty in records before 0.3.
    options: dict[str, Any] = field(default_factory=dict)
    #: the storage backend's key of the current rootfs: ``id`` for the rootfs made
    #: at create ("" here), a new one for each upgrade (see ``generations``)
    rootfs_id: str = ""
    #: which root filesystem this is: 1 at create, +1 at each upgrade
    generation: int = 1
    #: when this generation was made (``created`` for the first)
    generation_created: str = ""
    #: anonymous volumes: container path -> host directory, kept across upgrades
    anon_volumes: dict[str, str] = field(default_factory=dict)

    @property
    def rootfs_key(self) -> str:
        """The storage backend's name of the current rootfs."""
        return self.rootfs_id or self.id

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ContainerRecord:
        return from_dict(cls, doc)


def check_name(name: str) -> str:
    return check_id(name, "container name", BackendError)


def containers_dir(root: Path) -> Path:
    return root / "containers"


def state_dir(root: Path, name: str) -> Path:
    return containers_dir(root) / check_name(name)


def save_record(root: Path, rec: ContainerRecord) -> None:
    data = json.dumps(rec.to_json(), indent=2, sort_keys=True).encode()
    atomic_write(state_dir(root, rec.name) / RECORD, data, mode=0o600)  # env: secrets


def load_record(root: Path, name: str) -> ContainerRecord:
    path = state_dir(root, name) / RECORD
    # ContainerNotFound: no record (nothing, or a create that has not finished);
    # CorruptState: a record that does not parse is a container all the same, maybe
    # running: never taken for a half-created one (see remove)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ContainerNotFound(f"no such container: {name} (see `lxcri list`)") from None
    except NotADirectoryError:
        raise ContainerNotFound(f"no such container: {name} (see `lxcri list`)") from None
    except (ValueError, OSError) as e:
        raise CorruptState(f"container {name}: its state file {path} is corrupt: {e}") from None
    try:
        return ContainerRecord.from_json(doc)
    except (TypeError, KeyError, ValueError) as e:
        raise CorruptState(f"container {name}: its state file {path} is unreadable: {e}") from None


def list_records(root: Path) -> list[ContainerRecord]:
    out: list[ContainerRecord] = []
    base = containers_dir(root)
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if (d / RECORD).is_file():
            try:
                out.append(load_record(root, d.name))
            except BackendError:
                continue  # corrupt: `lxcri status NAME` says why, `lxcri rm -f` removes it
    return out


def lxcpath(cfg: Config) -> Path:
    """LXC's lxcpath for this config's state root."""
    return containers_dir(cfg.root)


def lxcpath_for_root(root: Path) -> Path:
    """LXC's lxcpath: the containers' state directories are LXC's container dirs."""
    return containers_dir(root)


def record_exit(
    sdir: Path, rc: int | None, restarts: int, *, start_failed: bool = False, error: str = ""
) -> None:
    """Note how the container's process ended (``exit.json``), for status and list.

    ``start_failed``: LXC could not start the container (``error`` says why), so
    ``rc`` is no exit status of the process and is recorded as None.
    """
    if not sdir.is_dir():
        return  # removed meanwhile (`lxcri rm -f`): do not bring the directory back
    doc: dict[str, Any] = {
        "exit_code": None if start_failed else rc,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "restarts": restarts,
    }
    if start_failed:
        doc["start_failed"] = True
        doc["error"] = error
    atomic_write(sdir / "exit.json", json.dumps(doc).encode())


def record_started(sdir: Path) -> None:
    """Note that a run starts now (``started.json``), for "Up 3 minutes" and the status."""
    if not sdir.is_dir():
        return
    doc = {"started": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write(sdir / STARTED, json.dumps(doc).encode())


def exit_status(rc: int, killed: bool) -> int:
    """The exit status to record for ``lxc-execute``'s return code ``rc``.

    A negative ``rc`` is a signal (128+N, as a shell reports it). When lxcri
    SIGKILLed the container after its stop timeout, lxc-execute says 1 (its
    init was killed): that is 137, as docker records it.
    """
    if killed and rc != 0:
        return 137
    return 128 - rc if rc < 0 else rc
