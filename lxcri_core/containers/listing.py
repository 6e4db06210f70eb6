"""Status and listing of plain-LXC containers, and finding one by name or id prefix."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers import lxc
from lxcri_core.containers.record import (
    STARTED,
    ContainerRecord,
    list_records,
    load_record,
    lxcpath,
    state_dir,
)
from lxcri_core.containers.runstate import _read_json, supervisor_pid
from lxcri_core.containers.status import ExitDoc, derive_status, describe
from lxcri_core.errors import BackendError
from lxcri_core.log import get_logger
from lxcri_core.spec.model import PortMapping

log = get_logger(__name__)


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    id: str
    image: str
    status: str  # created, running, paused, restarting, exited (see status.py)
    health: str  # "", starting, healthy, unhealthy
    exit_code: int | None
    restarts: int
    ipv4: str
    ipv6: str
    ports: tuple[PortMapping, ...]
    created: str
    pid: int | None
    storage: str
    image_digest: str = ""
    started_at: str = ""
    finished_at: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    #: docker's STATUS column: "Up 3 minutes (healthy)", "Exited (137) 5 minutes ago"
    status_text: str = ""
    #: why LXC could not start it (a failed start), else ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def port_text(p: PortMapping) -> str:
    """``127.0.0.1:8080->80/tcp``, as docker ps shows a published port."""
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}->{p.container_port}/{p.protocol}"


def _status(cfg: Config, rec: ContainerRecord) -> ContainerStatus:
    sdir = state_dir(cfg.root, rec.name)
    st = lxc.state(rec.name, lxcpath(cfg))
    exit_doc = ExitDoc.from_json(_read_json(sdir / "exit.json"))
    started = _read_json(sdir / STARTED)
    health = str(_read_json(sdir / "health.json").get("status", ""))
    sup = supervisor_pid(sdir) is not None
    derived = derive_status(st, exit_doc, health, sup, has_run=bool(started))
    started_at = str(started.get("started", ""))
    finished_at = exit_doc.finished if exit_doc else ""
    return ContainerStatus(
        name=rec.name,
        id=rec.id,
        image=rec.image,
        status=derived.state,
        health=derived.health,
        exit_code=derived.exit_code,
        restarts=exit_doc.restarts if exit_doc else 0,
        ipv4=rec.ipv4,
        ipv6=rec.ipv6,
        ports=rec.spec.ports,
        created=rec.created,
        pid=lxc.init_pid(rec.name, lxcpath(cfg)) if derived.state == "running" else None,
        storage=rec.storage,
        image_digest=rec.image_digest,
        started_at=started_at,
        finished_at=finished_at,
        labels=dict(rec.spec.labels),
        status_text=describe(derived, started_at, finished_at, datetime.now(UTC)),
        error=exit_doc.error if exit_doc else "",
    )


def status(cfg: Config, name: str) -> ContainerStatus:
    return _status(cfg, load_record(cfg.root, name))


def list_containers(cfg: Config) -> list[ContainerStatus]:
    return [_status(cfg, rec) for rec in list_records(cfg.root)]


def find(cfg: Config, name_or_id: str) -> str:
    """A container's name from its name or a unique id prefix (as docker accepts)."""
    recs = list_records(cfg.root)
    for rec in recs:
        if rec.name == name_or_id:
            return rec.name
    hits = [r.name for r in recs if len(name_or_id) >= 4 and r.id.startswith(name_or_id)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise BackendError(f"container id prefix {name_or_id} is ambiguous")
    with contextlib.suppress(BackendError):
        if state_dir(cfg.root, name_or_id).is_dir():  # half-created: `rm` cleans it up
            return name_or_id
    # the hint only for what could be an id: "ga" is a name, "ab" may be an id's start
    hexish = all(c in "0123456789abcdef" for c in name_or_id)
    hint = " (an id prefix needs at least 4 characters)" if hexish and len(name_or_id) < 4 else ""
    raise BackendError(f"no such container: {name_or_id}{hint} (see `lxcri ps -a`)")
