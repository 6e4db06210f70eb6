"""Status and listing of plain-LXC containers, and finding one by VMID, name or id prefix.

``list_containers`` reads in bulk: every record, the runtime state files, and
LXC's state of all containers at once (``lxc.states``: one read of
``/proc/net/unix``, plus one ``lxc-ls`` when any container runs), never a
process per container; ``derive_status`` (pure) turns each into one status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from datetime import UTC, datetime
from typing import Any

from lxcri_core.backend import ContainerStatus
from lxcri_core.config import Config
from lxcri_core.containers import lxc, vmids
from lxcri_core.containers.record import (
    RECORD,
    STARTED,
    ContainerRecord,
    check_name,
    containers_dir,
    list_records,
    load_record,
    lxcpath,
    save_record,
    state_dir,
)
from lxcri_core.containers.runstate import _read_json, supervisor_pid
from lxcri_core.containers.serial import from_dict
from lxcri_core.containers.status import ExitDoc, derive_status, describe
from lxcri_core.errors import BackendError, ContainerNotFound, LxcriError
from lxcri_core.log import get_logger
from lxcri_core.spec.model import PortMapping

log = get_logger(__name__)

__all__ = ["ContainerStatus", "find", "list_containers", "port_text", "status", "with_vmid"]


def port_text(p: PortMapping) -> str:
    """``127.0.0.1:8080->80/tcp``, as docker ps shows a published port."""
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}->{p.container_port}/{p.protocol}"


def with_vmid(cfg: Config, rec: ContainerRecord) -> ContainerRecord:
    """``rec`` with its VMID: a record of an older lxcri gets one now, kept from then on."""
    if rec.vmid:
        return rec
    rec = dataclasses.replace(rec, vmid=vmids.allocate(cfg.root, rec.name))
    with contextlib.suppress(OSError):  # a read-only root: the index keeps it stable
        save_record(cfg.root, rec)
    return rec


@dataclasses.dataclass(frozen=True)
class _Summary:
    """What a status shows of a record (``list`` reads only this of each record)."""

    vmid: int
    name: str
    id: str
    image: str
    image_digest: str
    storage: str
    created: str
    ipv4: str
    ipv6: str
    ports: tuple[PortMapping, ...]
    labels: dict[str, str]
    tags: tuple[str, ...]

    @classmethod
    def of(cls, rec: ContainerRecord) -> _Summary:
        return cls(
            rec.vmid, rec.name, rec.id, rec.image, rec.image_digest, rec.storage,
            rec.created, rec.ipv4, rec.ipv6, rec.spec.ports, dict(rec.spec.labels), rec.tags,
        )  # fmt: skip

    @classmethod
    def parse(cls, doc: Any) -> _Summary:
        """From a record's JSON without rebuilding its whole spec (a tenth of the time);
        ``TypeError``/``KeyError``/``ValueError`` for what does not parse."""
        spec = doc["spec"]
        s = (doc["name"], doc["id"], doc["image"], doc["image_digest"], doc["storage"])
        if not all(isinstance(v, str) for v in s) or not isinstance(spec, dict):
            raise TypeError("not a record")
        vmid = doc.get("vmid", 0)
        if not isinstance(vmid, int) or isinstance(vmid, bool):
            raise TypeError("vmid is not a number")
        labels = spec.get("labels") or {}
        return cls(
            vmid=vmid,
            name=s[0],
            id=s[1],
            image=s[2],
            image_digest=s[3],
            storage=s[4],
            created=str(doc["created"]),
            ipv4=str(doc.get("ipv4", "")),
            ipv6=str(doc.get("ipv6", "")),
            ports=tuple(from_dict(PortMapping, p) for p in spec.get("ports") or ()),
            labels={str(k): str(v) for k, v in dict(labels).items()},
            tags=tuple(str(t) for t in doc.get("tags") or ()),
        )


def _summaries(root: Any) -> list[_Summary]:
    """Every readable record, in name order (an unreadable one: see ``status NAME``)."""
    out: list[_Summary] = []
    base = containers_dir(root)
    if not base.is_dir():
        return out
    for name in sorted(os.listdir(base)):
        try:
            with open(base / name / RECORD, "rb") as f:
                doc = json.loads(f.read())
            out.append(_Summary.parse(doc))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return out


def _status(cfg: Config, rec: _Summary, st: str, pid: int | None) -> ContainerStatus:
    if not rec.vmid:  # a record of an older lxcri: it gets its VMID now
        rec = _Summary.of(with_vmid(cfg, load_record(cfg.root, rec.name)))
    sdir = state_dir(cfg.root, rec.name)
    try:  # one listdir instead of a failed open per missing file (most are, most of the time)
        present = set(os.listdir(sdir))
    except OSError:
        present = set()

    def doc(fname: str) -> dict[str, Any]:
        return _read_json(sdir / fname) if fname in present else {}

    exit_doc = ExitDoc.from_json(doc("exit.json"))
    started = doc(STARTED)
    health = str(doc("health.json").get("status", ""))
    sup = "supervisor.pid" in present and supervisor_pid(sdir) is not None
    derived = derive_status(st, exit_doc, health, sup, has_run=bool(started))
    started_at = str(started.get("started", ""))
    finished_at = exit_doc.finished if exit_doc else ""
    return ContainerStatus(
        vmid=rec.vmid,
        name=rec.name,
        id=rec.id,
        image=rec.image,
        status=derived.state,
        health=derived.health,
        exit_code=derived.exit_code,
        restarts=exit_doc.restarts if exit_doc else 0,
        ipv4=rec.ipv4,
        ipv6=rec.ipv6,
        ports=rec.ports,
        created=rec.created,
        pid=pid if derived.state == "running" else None,
        storage=rec.storage,
        image_digest=rec.image_digest,
        started_at=started_at,
        finished_at=finished_at,
        labels=rec.labels,
        tags=rec.tags,
        status_text=describe(derived, started_at, finished_at, datetime.now(UTC)),
        error=exit_doc.error if exit_doc else "",
    )


def status(cfg: Config, name: str) -> ContainerStatus:
    rec = load_record(cfg.root, name)
    st, pid = lxc.state_pid(name, lxcpath(cfg))
    return _status(cfg, _Summary.of(rec), st, pid)


def list_containers(cfg: Config) -> list[ContainerStatus]:
    """Every container, read in bulk (see the module's doc)."""
    records = _summaries(cfg.root)
    if not records:
        return []
    states = lxc.states(lxcpath(cfg), [r.name for r in records])
    return [_status(cfg, r, *states.get(r.name, ("STOPPED", None))) for r in records]


def find(cfg: Config, ref: str) -> str:
    """A container's name from its VMID, name or unique id prefix (>= 4 characters).

    All digits is a VMID first (as pct reads it), then a name, then an id prefix.
    A directory without a readable record (half-created, or corrupt) is found by
    its name, so that ``rm`` can say what it is and clean it up.
    """
    if ref.isdigit() and len(ref) <= 10:
        name = vmids.name_of(cfg.root, int(ref))
        if name is not None:
            return name
    with contextlib.suppress(LxcriError):
        if (state_dir(cfg.root, ref) / RECORD).is_file():
            return ref
    recs = list_records(cfg.root) if len(ref) >= 4 else []
    hits = [r.name for r in recs if r.id.startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise BackendError(f"container id prefix {ref} is ambiguous")
    with contextlib.suppress(BackendError):
        if state_dir(cfg.root, check_name(ref)).is_dir():  # half-created or corrupt
            return ref
    # the hint only for what could be an id: "ga" is a name, "ab" may be an id's start
    hexish = all(c in "0123456789abcdef" for c in ref)
    hint = " (an id prefix needs at least 4 characters)" if hexish and len(ref) < 4 else ""
    raise ContainerNotFound(f"no such container: {ref}{hint} (see `lxcri ps -a`)")
