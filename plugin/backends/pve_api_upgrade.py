"""``upgrade``, ``rollback`` and ``history`` of the pve-api backend, through PVE's API only.

An API token writes no storage, so the new rootfs is made by PVE: the image is
uploaded as for ``create`` and a helper CT is created from it; PVE refuses to
hand a ``rootfs`` to another CT ("Cannot move to/from 'rootfs'"), so the
helper's rootfs is first moved on its own storage (``move_volume``: a copy,
the original kept as its ``unused0``), and that unused volume is reassigned
to the CT (``move_volume`` with ``target-vmid``: renamed to the CT's own). The
swap is one config write (``PUT .../config``: ``rootfs`` the new volume, the
old one kept as ``unusedN``, the image's entrypoint and environment moved,
the description's image lines), so PVE's config lock makes it atomic; the
helper is destroyed. Older generations beyond ``keep_generations`` and a
rolled-back one are deleted as PVE deletes an ``unusedN`` key: with its volume.

The generations and a journal live in the CT's description (``lxcri
generations [...]``, ``lxcri upgrading {...}``), where this backend keeps its
other metadata: they are what every lxcri talking to the cluster sees. What the
journal names (the helper CT, the reassigned volume, the volumes to discard)
is cleaned up by the next upgrade or rollback when a run was killed, as far as
this host noted it too (``<root>/pve-api/NODE-VMID.upgrade.json``): anyone
allowed to edit a description could name any CT or volume in a journal line.

The working directory, user and stop signal of a new image are raw ``lxc.*``
keys PVE wrote at create; the API cannot change them: they stay the old
image's, and so does a healthcheck (refused at create on this backend).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lxcri_pve.backends.pve_api_client import checked_node
from lxcri_pve.backends.pve_api_create import node_platform
from lxcri_pve.backends.pve_generations import (
    Derived,
    GenRecord,
    check_storable,
    moved_entrypoint,
    moved_env,
)

from lxcri_core import faults
from lxcri_core.backend import CtRef, Generation, UpgradeRequest, UpgradeResult
from lxcri_core.errors import BackendError, SpecError
from lxcri_core.fsutil import atomic_write
from lxcri_core.log import get_logger
from lxcri_core.spec.pve_config import parse_property_string, render_property_string

if TYPE_CHECKING:
    from lxcri_pve.backends.pve_api_client import PveClient

    from lxcri_core.config import Config
    from lxcri_core.media import Platform


class PveApiBackend(Protocol):
    """What of ``pve_api.PveApiBackend`` this uses."""

    cfg: Config
    api: PveClient
    task_timeout: float
    _confs: dict[tuple[str, int], dict[str, Any]]

    def _find(self, ref: CtRef) -> dict[str, Any]: ...
    def _online_node(self, r: Mapping[str, Any]) -> None: ...
    def _ct(self, r: Mapping[str, Any]) -> str: ...
    def _storages(self, node: str) -> list[dict[str, Any]]: ...
    def _template(
        self, node: str, storages: list[dict[str, Any]], store: Any, rec: Any, platform: Platform
    ) -> str: ...
    def start(self, ref: CtRef) -> None: ...
    def stop(self, ref: CtRef, timeout: float | None = None) -> None: ...


log = get_logger(__name__)

GENERATIONS_LINE = "lxcri generations "
JOURNAL_LINE = "lxcri upgrading "
HELPER_TAG = "lxcri-upgrade"


def _helper_description(vmid: int) -> str:
    return f"lxcri upgrade helper of CT {vmid}"


# -- the description's lines --------------------------------------------------------------
def _line(description: str, prefix: str) -> Any:
    for line in description.splitlines():
        if line.startswith(prefix):
            try:
                return json.loads(line[len(prefix) :])
            except ValueError:
                return None
    return None


def _with_line(description: str, prefix: str, value: Any) -> str:
    """``description`` with its ``prefix`` line replaced by ``value`` (None: removed)."""
    lines = [ln for ln in description.splitlines() if not ln.startswith(prefix)]
    if value is not None:
        lines.append(prefix + json.dumps(value, separators=(",", ":"), sort_keys=True))
    return "\n".join(lines)


def _image_lines(description: str, image: str, digest: str) -> str:
    out = []
    for line in description.splitlines():
        if line.startswith("lxcri image "):
            line = f"lxcri image {image}"
        elif line.startswith("lxcri digest "):
            line = f"lxcri digest {digest}"
        out.append(line)
    return "\n".join(out)


def _image_of(description: str) -> tuple[str, str]:
    image = digest = ""
    for line in description.splitlines():
        if line.startswith("lxcri image "):
            image = line[len("lxcri image ") :].strip()
        elif line.startswith("lxcri digest "):
            digest = line[len("lxcri digest ") :].strip()
    return image, digest


def _gens(description: str) -> list[GenRecord]:
    data = _line(description, GENERATIONS_LINE)
    if not isinstance(data, list):
        return []
    try:
        return [GenRecord.from_json(g) for g in data]
    except (TypeError, KeyError, AttributeError):
        return []  # edited by hand: as if none were recorded


def gens_json(gens: Sequence[GenRecord]) -> list[dict[str, Any]]:
    out = []
    for g in gens:
        d = g.to_json()
        if g.derived is not None:  # the API moves only these two: keep the line short
            d["derived"] = {"entrypoint": g.derived.entrypoint, "env": list(g.derived.env)}
        out.append(d)
    return out


# -- API steps --------------------------------------------------------------------------------
@dataclasses.dataclass
class _Ct:
    vmid: int
    node: str
    path: str
    running: bool
    name: str
    conf: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.conf.get("description") or "")

    @property
    def rootfs(self) -> dict[str, str]:
        return parse_property_string(str(self.conf.get("rootfs") or ""), "volume")


def _ct(be: PveApiBackend, ref: CtRef) -> _Ct:
    r = be._find(ref)
    be._online_node(r)
    path = be._ct(r)
    conf = be.api.get(f"{path}/config", f"reading CT {r['vmid']}'s config") or {}
    digest = _image_of(str(conf.get("description") or ""))[1]
    if not digest:
        raise BackendError(f"CT {r['vmid']} was not created by lxcri (no image in its description)")
    return _Ct(
        int(r["vmid"]),
        str(r["node"]),
        path,
        r.get("status") == "running",
        str(r.get("name") or ""),
        dict(conf),
    )


def _put(be: PveApiBackend, ct: _Ct, what: str, **params: Any) -> None:
    be._confs.pop((ct.node, ct.vmid), None)
    res = be.api.call("PUT", f"{ct.path}/config", f"{what} of CT {ct.vmid}", **params)
    if isinstance(res, str) and res.startswith("UPID:"):
        be.api.wait_task(res, what, be.task_timeout)


def _post_task(be: PveApiBackend, path: str, what: str, **params: Any) -> None:
    upid = be.api.call("POST", path, what, **params)
    be.api.wait_task(upid, what, be.task_timeout)


def _unused_key(conf: Mapping[str, Any], volid: str) -> str | None:
    for key, value in conf.items():
        if re.fullmatch(r"unused\d+", key) and str(value) == volid:
            return key
    return None


def _free_unused(conf: Mapping[str, Any]) -> str:
    n = 0
    while f"unused{n}" in conf:
        n += 1
    return f"unused{n}"


def _note_path(be: PveApiBackend, ct: _Ct) -> Path:
    return be.cfg.root / "pve-api" / f"{checked_node(ct.node)}-{ct.vmid}.upgrade.json"


def _note(be: PveApiBackend, ct: _Ct) -> dict[str, Any]:
    """This host's note of what its running upgrade or rollback of ``ct`` may clean up.

    The journal in the description says the same, but whoever may edit a description
    could write any CT or volume there: a clean-up destroys or deletes only what this
    host noted too (a run killed on another host leaves its helper and volumes, named
    in a warning)."""
    try:
        data = json.loads(_note_path(be, ct).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_note(be: PveApiBackend, ct: _Ct, note: Mapping[str, Any]) -> None:
    path = _note_path(be, ct)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(dict(note)).encode())


def _destroy_helper(be: PveApiBackend, ct: _Ct, helper: int) -> None:
    """Destroy CT ``helper``, this host's upgrade helper of ``ct`` (its description says so)."""
    path = f"nodes/{ct.node}/lxc/{helper}"
    try:
        conf = be.api.get(f"{path}/config", f"reading CT {helper}'s config") or {}
    except BackendError:
        return  # gone (or never made)
    if str(conf.get("description") or "").strip() != _helper_description(ct.vmid):
        return
    what = f"destroying the upgrade helper CT {helper}"
    upid = be.api.call("DELETE", path, what, purge=1, force=1, **{"destroy-unreferenced-disks": 1})
    be.api.wait_task(upid, what, be.task_timeout)


def _recover(be: PveApiBackend, ref: CtRef) -> _Ct:
    """Clean up after an upgrade or rollback that was killed (the journal line)."""
    ct = _ct(be, ref)
    j = _line(ct.description, JOURNAL_LINE)
    if j is None and JOURNAL_LINE not in ct.description:
        return ct
    if isinstance(j, dict):
        note = _note(be, ct)
        named = {k: j[k] for k in ("helper", "key") if j.get(k) is not None}
        both: dict[str, Any] = {k: v for k, v in named.items() if note.get(k) == v}
        discard = [v for v in j.get("discard") or [] if v in (note.get("discard") or [])]
        if both != named or discard != (j.get("discard") or []):
            log.warning(
                "an interrupted upgrade was not this host's, or its journal was edited: "
                "what only the journal names is left alone",
                vmid=ct.vmid,
                journal=j,
            )
        both["discard"] = discard
        _clean_up(be, ct, both)
    closed = _with_line(ct.description, JOURNAL_LINE, None)
    _put(be, ct, "closing an interrupted upgrade", description=closed)
    _note_path(be, ct).unlink(missing_ok=True)
    return _ct(be, ref)


def _clean_up(be: PveApiBackend, ct: _Ct, note: Mapping[str, Any]) -> None:
    """Destroy the helper and delete the volumes ``note`` names (never the rootfs or a
    kept generation's)."""
    gens = {g.volume for g in _gens(ct.description)}
    current = ct.rootfs.get("volume", "")
    if isinstance(note.get("helper"), int):
        _destroy_helper(be, ct, note["helper"])
    key = note.get("key")
    vol = str(ct.conf.get(key, "")) if isinstance(key, str) else ""
    # the reassigned volume, when the swap never happened
    drop = [str(key)] if vol and vol != current and vol not in gens else []
    for volid in note.get("discard") or []:
        k = _unused_key(ct.conf, str(volid))
        if k and volid != current and volid not in gens:
            drop.append(k)
    if drop:
        _put(be, ct, "removing what an interrupted upgrade left", delete=",".join(drop))


def _first(be: PveApiBackend, ct: _Ct) -> list[GenRecord]:
    gens = _gens(ct.description)
    if gens:
        if not gens[0].volume:  # recorded at create, before PVE named the volume
            gens[0] = dataclasses.replace(gens[0], volume=ct.rootfs.get("volume", ""))
        return gens
    from lxcri_pve.backends.pve_upgrade import stored_image_config

    image, digest = _image_of(ct.description)
    derived = None
    image_config = stored_image_config(be.cfg, digest)
    if image_config is not None:
        with contextlib.suppress(BackendError):
            derived = derived_of(image_config, image, ct.name)
    volume = ct.rootfs.get("volume", "")
    return [GenRecord(1, image, digest, "", volume, derived)]


def _derived(store: Any, rec: Any, name: str) -> Derived:
    from lxcri_core.media import Manifest, load_json

    manifest = Manifest.parse(store.read_blob(rec.descriptor.digest))
    image_config = load_json(store.read_blob(manifest.config.digest), "image config")
    return derived_of(image_config, rec.name, name)


def derived_of(image_config: Mapping[str, Any], image: str, hostname: str) -> Derived:
    """What the image alone gives a CT created through the API (``create_params``)."""
    from lxcri_core.spec.build import build_spec
    from lxcri_core.spec.options import RunOptions

    opts = RunOptions(name=hostname, hostname=hostname, user="0")
    try:
        derived = Derived.of(build_spec(image_config, opts, None, image=image))
    except SpecError as e:
        raise BackendError(f"image {image}: {e}") from None
    check_storable(derived, image)
    return derived


def _moved(ct: _Ct, old: Derived | None, new: Derived | None) -> dict[str, Any]:
    """The entrypoint and env parameters that move what ``old`` gave to ``new``."""
    if old is None or new is None:
        return {}
    out: dict[str, Any] = {}
    entrypoint = moved_entrypoint(str(ct.conf.get("entrypoint") or ""), old, new)
    if entrypoint and entrypoint != ct.conf.get("entrypoint"):
        out["entrypoint"] = entrypoint
    env = [e for e in str(ct.conf.get("env") or "").split("\0") if e]
    new_env = moved_env(env, old.env, new.env)
    if new_env != env:
        out["env"] = "\0".join(new_env)
    return out


def _set_volume(ct: _Ct, volid: str) -> str:
    prop = ct.rootfs
    prop["volume"] = volid
    return render_property_string(prop, "volume")


@contextlib.contextmanager
def _exclusive(be: PveApiBackend, ref: CtRef) -> Iterator[CtRef]:
    """One upgrade or rollback of a CT at a time from this host (another host's is seen
    by its journal line only); yields the CT by its VMID."""
    from lxcri_core.errors import LockTimeout
    from lxcri_core.fsutil import flocked

    r = be._find(ref)
    path = be.cfg.root / "pve-api" / f"{checked_node(r.get('node'))}-{int(r['vmid'])}.lock"
    held = contextlib.ExitStack()
    try:
        held.enter_context(flocked(path, timeout=be.cfg.lock_timeout))
    except LockTimeout:
        raise BackendError(f"CT {r['vmid']}: another upgrade or rollback of it runs") from None
    with held:
        yield CtRef(str(int(r["vmid"])))


def upgrade(be: PveApiBackend, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
    with _exclusive(be, ref) as byid:
        return _upgrade(be, byid, req)


def rollback(be: PveApiBackend, ref: CtRef) -> UpgradeResult:
    with _exclusive(be, ref) as byid:
        return _rollback(be, byid)


def _upgrade(be: PveApiBackend, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
    from lxcri_core.images import resolve_or_pull

    ct = _recover(be, ref)
    image, old_digest = _image_of(ct.description)
    plat = node_platform(be.api.get(f"nodes/{ct.node}/status", f"reading node {ct.node}"))
    platform = str(plat)
    store, rec = resolve_or_pull(
        be.cfg, req.image or image, pull=req.pull, insecure=req.insecure, platform=platform
    )
    digest = rec.descriptor.digest
    result = UpgradeResult(ct.vmid, ct.name, rec.name, old_digest, digest, "unchanged")
    if digest == old_digest:
        return dataclasses.replace(result, message=f"already at {digest}")
    gens = _first(be, ct)
    new_derived = _derived(store, rec, ct.name)  # refuses a hostile one before anything
    storages = be._storages(ct.node)
    ostemplate = be._template(ct.node, storages, store, rec, plat)
    nextid = be.api.get("cluster/nextid", "allocating a VMID for the upgrade helper")
    if not str(nextid).isdigit():
        raise BackendError(f"the Proxmox API answered {nextid!r} for the next VMID")
    helper, key = int(nextid), _free_unused(ct.conf)
    journal = {"helper": helper, "key": key}
    _save_note(be, ct, journal)
    noted = _with_line(ct.description, JOURNAL_LINE, journal)
    _put(be, ct, "noting the upgrade", description=noted)
    plan = _Plan(ct, result, gens, rec, new_derived, helper, key, ostemplate)
    try:
        result = _upgrade_steps(be, plan)
    except Exception:
        _recover(be, CtRef(str(ct.vmid)))  # the helper and the moved volume go
        if ct.running and be._find(CtRef(str(ct.vmid))).get("status") != "running":
            with contextlib.suppress(BackendError):
                be.start(CtRef(str(ct.vmid)))
        raise
    if result.started:
        try:
            be.start(CtRef(str(ct.vmid)))
        except BackendError as e:
            back = _rollback(be, CtRef(str(ct.vmid)))
            return dataclasses.replace(
                result,
                outcome="rolled-back",
                message=f"the new image did not start: {e}; rolled back to {back.new_digest}",
                started=back.started,
            )
    return result


@dataclasses.dataclass(frozen=True)
class _Plan:
    ct: _Ct
    result: UpgradeResult
    gens: list[GenRecord]
    rec: Any
    derived: Derived
    helper: int
    #: the unusedN key the new volume arrives at in the CT's config
    key: str
    ostemplate: str


def _upgrade_steps(be: PveApiBackend, plan: _Plan) -> UpgradeResult:
    """From the journal to the swap; the CT is left stopped (``started``: start it)."""
    ct, gens, rec, helper, key = plan.ct, plan.gens, plan.rec, plan.helper, plan.key
    digest = rec.descriptor.digest
    old_volume = ct.rootfs.get("volume", "")
    sid = old_volume.partition(":")[0]
    faults.point("api-journal")
    m = re.fullmatch(r"(\d+)G", ct.rootfs.get("size", ""))
    size = m.group(1) if m else str(be.cfg.pve_rootfs_size)
    _post_task(
        be,
        f"nodes/{ct.node}/lxc",
        f"creating the upgrade helper CT {helper}",
        vmid=helper,
        ostemplate=plan.ostemplate,
        storage=sid,
        rootfs=f"{sid}:{size}",
        unprivileged=int(ct.conf.get("unprivileged") or 0),
        hostname=f"lxcri-upgrade-{ct.vmid}",
        tags=HELPER_TAG,
        description=_helper_description(ct.vmid),
    )
    faults.point("api-helper")
    # PVE hands no rootfs to another CT: a copy becomes the helper's rootfs, the
    # image's volume its unused0, which can move
    move = f"nodes/{ct.node}/lxc/{helper}/move_volume"
    _post_task(be, move, "moving the helper's rootfs", volume="rootfs", storage=sid)
    _post_task(
        be,
        move,
        f"handing the new rootfs to CT {ct.vmid}",
        volume="unused0",
        **{"target-vmid": ct.vmid, "target-volume": key},
    )
    faults.point("api-moved")
    _destroy_helper(be, ct, helper)
    ct = _ct(be, CtRef(str(ct.vmid)))
    new_volume = str(ct.conf.get(key) or "")
    if not new_volume:
        raise BackendError(f"CT {ct.vmid}: the new rootfs did not arrive as {key}")
    running = ct.running
    now = datetime.now(UTC).isoformat(timespec="seconds")
    new = GenRecord(
        gens[0].number + 1, rec.name, digest, now, new_volume, plan.derived, started=running
    )
    older = [dataclasses.replace(gens[0], started=False), *gens[1:]]
    kept, pruned = older[: be.cfg.keep_generations], older[be.cfg.keep_generations :]
    discard = [g.volume for g in pruned]
    if running:
        be.stop(CtRef(str(ct.vmid)))
    faults.point("api-stopped")
    description = _image_lines(ct.description, rec.name, digest)
    description = _with_line(description, GENERATIONS_LINE, gens_json([new, *kept]))
    description = _with_line(description, JOURNAL_LINE, {"discard": discard} if discard else None)
    params: dict[str, Any] = {
        "rootfs": _set_volume(ct, new_volume),
        "description": description,
        # the key the new volume arrived at keeps the old one (pruned at once if keep 0)
        key: old_volume,
        **_moved(ct, gens[0].derived, plan.derived),
    }
    _save_note(be, ct, {"helper": helper, "key": key, "discard": discard})
    _put(be, ct, "swapping the rootfs", **params)
    faults.point("api-swapped")
    if discard:
        _recover(be, CtRef(str(ct.vmid)))  # deletes what the journal names
    _note_path(be, ct).unlink(missing_ok=True)
    return dataclasses.replace(plan.result, outcome="upgraded", started=running)


def _rollback(be: PveApiBackend, ref: CtRef) -> UpgradeResult:
    ct = _recover(be, ref)
    gens = _gens(ct.description)
    current_volume = ct.rootfs.get("volume", "")
    if len(gens) < 2 or gens[0].volume != current_volume:
        raise BackendError(f"CT {ct.vmid} has no earlier generation to roll back to")
    current, target = gens[0], gens[1]
    key = _unused_key(ct.conf, target.volume)
    if key is None:
        raise BackendError(
            f"CT {ct.vmid}'s generation {target.number} ({target.volume}) is no longer in its "
            "config; it cannot be rolled back to"
        )
    restart = ct.running or current.started
    if ct.running:
        be.stop(CtRef(str(ct.vmid)))
    back = dataclasses.replace(target, started=False)
    description = _image_lines(ct.description, target.image, target.image_digest)
    description = _with_line(description, GENERATIONS_LINE, gens_json([back, *gens[2:]]))
    description = _with_line(description, JOURNAL_LINE, {"discard": [current.volume]})
    _save_note(be, ct, {"discard": [current.volume]})
    _put(
        be,
        ct,
        "swapping the rootfs back",
        rootfs=_set_volume(ct, target.volume),
        description=description,
        **{key: current.volume},
        **_moved(ct, current.derived, target.derived),
    )
    faults.point("api-rolled-back")
    _recover(be, CtRef(str(ct.vmid)))  # deletes the discarded generation
    if restart:
        be.start(CtRef(str(ct.vmid)))
    return UpgradeResult(
        ct.vmid,
        ct.name,
        target.image,
        current.image_digest,
        target.image_digest,
        "rolled-back",
        message=f"rolled back to generation {target.number} ({target.image_digest})",
        started=restart,
    )


def history(be: PveApiBackend, ref: CtRef) -> list[Generation]:
    ct = _ct(be, ref)
    current = ct.rootfs.get("volume", "")
    gens = _gens(ct.description)
    if not gens:
        image, digest = _image_of(ct.description)
        gens = [GenRecord(1, image, digest, "", current)]
    elif not gens[0].volume:
        gens[0] = dataclasses.replace(gens[0], volume=current)
    return [
        Generation(g.number, g.image, g.image_digest, g.created, g.volume == current, g.volume)
        for g in gens
    ]
