"""The pve-api backend: Proxmox VE containers through the cluster's HTTPS API, from anywhere.

``create`` builds the rootfs through PVE, since an API token cannot write a
storage: lxcri pulls the image into its own store (with its own registry
credentials, for the target node's platform), exports it as an oci-archive
PVE 9.1 reads (``write_oci_archive``: OCI media types, a ``.tar`` name),
uploads it to a ``vztmpl`` storage of the node (an identical upload, same
name and size, is reused) and asks ``POST /nodes/{node}/lxc`` to make the CT
from it, with the settings ``pve_api_create`` renders. The node is
``pve_node`` or the least-loaded online one, the VMID ``/cluster/nextid``'s.

``list`` is one ``GET /cluster/resources`` for the whole cluster; a ref (VMID
or name) is found in it, which also gives the node to talk to. Lifecycle
verbs are PVE's status endpoints and ``DELETE``, each waited for as a task.

What the API cannot do is a BackendError naming the local path (``exec``:
``pct exec`` on the node; the app's output: PVE keeps none it serves; the
exit status; the hookscript, raw ``lxc.*`` keys and bind mounts for a token).
"""

from __future__ import annotations

import builtins
import dataclasses
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_pve.backends.pve_api_client import LOCAL_HINT, PveClient, checked_node, one_line
from lxcri_pve.backends.pve_api_create import (
    check_pct_property,
    choose_node,
    create_params,
    description_labels,
    node_platform,
    sha256_file,
    template_name,
)
from lxcri_pve.backends.pve_state import TAG, tag_kept

from lxcri_core.backend import (
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
from lxcri_core.errors import BackendError, ContainerNotFound
from lxcri_core.log import get_logger
from lxcri_core.media import Manifest, Platform, load_json
from lxcri_core.spec.pve_config import parse_property_string

if TYPE_CHECKING:
    from lxcri_pve.backends.pve_storage_status import StorageStatus


class PveApiBackend:
    """The ``Backend`` of Proxmox VE's API (``name = "pve-api"``)."""

    name = "pve-api"
    features: frozenset[Feature] = frozenset()
    hint = LOCAL_HINT

    def __init__(self, cfg: Config, environ: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.api = PveClient(cfg, environ)
        self.log = get_logger(__name__)
        if not cfg.pve_verify_tls:
            self.log.warning("TLS verification of the Proxmox API is off", url=cfg.pve_url)
        #: Seconds each worker task may take (``pve_task_timeout``).
        self.task_timeout = cfg.pve_task_timeout
        #: configs ``list`` read, by (node, vmid)
        self._confs: dict[tuple[str, int], dict[str, Any]] = {}

    # -- finding things ------------------------------------------------------------------
    def _vms(self) -> list[dict[str, Any]]:
        res = self.api.get("cluster/resources", "listing the cluster's containers", type="vm")
        return [r for r in res or [] if r.get("type") == "lxc"]

    def _find(self, ref: CtRef) -> dict[str, Any]:
        vms = self._vms()
        if ref.vmid is not None:
            hits = [r for r in vms if int(r.get("vmid", -1)) == ref.vmid]
        else:
            hits = [r for r in vms if r.get("name") == ref.text]
        if not hits:
            raise ContainerNotFound(f"no container {ref} on the Proxmox cluster at {self.api.url}")
        if len(hits) > 1:
            ids = ", ".join(str(r["vmid"]) for r in hits)
            raise BackendError(f"the name {ref} is used by CTs {ids}; give the VMID")
        return hits[0]

    def _ct(self, r: Mapping[str, Any]) -> str:
        return f"nodes/{checked_node(r.get('node'))}/lxc/{int(r['vmid'])}"

    def _online_node(self, r: Mapping[str, Any]) -> None:
        if r.get("status") == "unknown":
            raise BackendError(f"CT {r['vmid']}'s node {one_line(r.get('node'))} is offline")

    # -- create --------------------------------------------------------------------------
    def _image(self, req: CreateRequest, platform: Platform) -> tuple[Any, Any]:
        from lxcri_core.images import resolve_or_pull

        return resolve_or_pull(
            self.cfg, req.image, pull=req.pull, insecure=req.insecure, platform=str(platform)
        )

    def _storages(self, node: str) -> list[dict[str, Any]]:
        res = self.api.get(f"nodes/{node}/storage", f"listing node {node}'s storages", enabled=1)
        return [s for s in res or [] if s.get("active", 1)]

    def _rootfs_storage(self, storages: list[dict[str, Any]], node: str) -> str:
        if self.cfg.pve_storage:
            return self.cfg.pve_storage
        ids = [str(s["storage"]) for s in storages if "rootdir" in str(s.get("content", ""))]
        for pick in ("local-zfs", "local-lvm", "local"):
            if pick in ids:
                return pick
        if not ids:
            raise BackendError(f"node {node} has no storage for container root filesystems")
        return ids[0]

    def _template_storage(self, storages: list[dict[str, Any]], node: str) -> str:
        ids = [str(s["storage"]) for s in storages if "vztmpl" in str(s.get("content", ""))]
        if not ids:
            raise BackendError(
                f"node {node} has no storage for container templates (content vztmpl) to "
                "upload the image to"
            )
        if self.cfg.pve_template_storage:
            if self.cfg.pve_template_storage not in ids:
                raise BackendError(
                    f"pve_template_storage {self.cfg.pve_template_storage} is not a storage "
                    f"for container templates (content vztmpl) on node {node}; "
                    f"those are: {', '.join(ids)}"
                )
            ids = [self.cfg.pve_template_storage]
        sid = "local" if "local" in ids else ids[0]
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]", sid):
            # it goes into the upload's URL path
            raise BackendError(f"the Proxmox API named a storage {one_line(sid)[:80]!r}")
        return sid

    def _upload(self, node: str, storage: str, archive: Path, name: str, digest: str) -> str:
        volid = f"{storage}:vztmpl/{name}"
        have = self.api.get(
            f"nodes/{node}/storage/{storage}/content",
            f"listing the templates on {storage}",
            content="vztmpl",
        )
        size = archive.stat().st_size
        for v in have or []:
            if v.get("volid") == volid and int(v.get("size", -1)) == size:
                self.log.info("template reused", volid=volid, node=node)
                return volid
        upid = self.api.upload(
            f"nodes/{node}/storage/{storage}/upload",
            f"uploading the image to {storage} on {node}",
            {"content": "vztmpl", "checksum": digest, "checksum-algorithm": "sha256"},
            name,
            archive,
        )
        self.api.wait_task(upid, f"uploading {name} to {storage} on node {node}", self.task_timeout)
        self.log.info("template uploaded", volid=volid, node=node, size=size)
        return volid

    def create(self, req: CreateRequest) -> Container:
        # one read: the nodes to choose from and the names already taken
        resources = self.api.get("cluster/resources", "reading the cluster's resources") or []
        node = choose_node(resources, self.cfg.pve_node)
        platform = node_platform(self.api.get(f"nodes/{node}/status", f"reading node {node}"))
        store, rec = self._image(req, platform)
        manifest = Manifest.parse(store.read_blob(rec.descriptor.digest))
        image_config = load_json(store.read_blob(manifest.config.digest), "image config")
        storages = self._storages(node)
        rootfs_storage = self._rootfs_storage(storages, node)
        if req.vmid is not None:
            self.api.get("cluster/nextid", f"checking VMID {req.vmid}", vmid=req.vmid)
            vmid = req.vmid
        else:
            nextid = self.api.get("cluster/nextid", "allocating a VMID")
            if not str(nextid).isdigit():
                raise BackendError(f"the Proxmox API answered {nextid!r} for the next VMID")
            vmid = int(nextid)
        # every refusal comes here, before anything is uploaded
        params = create_params(
            self.cfg,
            req,
            image_config,
            rec.name,
            rec.descriptor.digest,
            self.api.creds,
            vmid=vmid,
            storage=rootfs_storage,
            platform=platform,
        )
        hostname = str(params.get("hostname", ""))
        taken = [r for r in resources if r.get("type") == "lxc" and r.get("name") == hostname]
        if taken and req.options.name:
            raise BackendError(
                f"a container named {hostname} already exists (CT {taken[0].get('vmid')}); "
                "choose another --name"
            )
        ostemplate = self._template(node, storages, store, rec, platform)
        upid = self.api.call(
            "POST",
            f"nodes/{node}/lxc",
            f"creating CT {vmid} on node {node}",
            vmid=vmid,
            ostemplate=ostemplate,
            **params,
        )
        self.api.wait_task(upid, f"creating CT {vmid}", self.task_timeout)
        self._keep_entrypoint(node, vmid, params)
        self.log.info("created", vmid=vmid, node=node, image=rec.name, template=ostemplate)
        return Container(vmid, hostname, str(vmid), self.name, node)

    def _template(
        self, node: str, storages: list[dict[str, Any]], store: Any, rec: Any, platform: Platform
    ) -> str:
        """The image as a vztmpl volume on ``node``: exported and uploaded (or found there)."""
        from lxcri_core.store.exporter import write_oci_archive

        tmpl_storage = self._template_storage(storages, node)
        tmp_root = self.cfg.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="pve-export-") as tmp:
            archive = Path(tmp) / "image.tar"
            write_oci_archive(store, rec, archive, platform)
            digest = sha256_file(archive)
            name = template_name(rec.name, digest)
            return self._upload(node, tmpl_storage, archive, name, digest)

    # -- image lifecycle (pve_api_upgrade) -------------------------------------------------
    def upgrade(self, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
        from lxcri_pve.backends.pve_api_upgrade import upgrade

        return upgrade(self, ref, req)

    def rollback(self, ref: CtRef) -> UpgradeResult:
        from lxcri_pve.backends.pve_api_upgrade import rollback

        return rollback(self, ref)

    def history(self, ref: CtRef) -> Sequence[Generation]:
        from lxcri_pve.backends.pve_api_upgrade import history

        return history(self, ref)

    def _keep_entrypoint(self, node: str, vmid: int, params: Mapping[str, Any]) -> None:
        """The run's command where the image's took its place: PVE's OCI create writes
        the image's Entrypoint+Cmd into the config after the create parameters."""
        wanted = params.get("entrypoint")
        if wanted is None:
            return
        path = f"nodes/{node}/lxc/{vmid}/config"
        conf = self.api.get(path, f"reading CT {vmid}'s config")
        if (conf or {}).get("entrypoint") != wanted:
            self.api.call("PUT", path, f"setting CT {vmid}'s entrypoint", entrypoint=wanted)

    # -- lifecycle -----------------------------------------------------------------------
    def _action(self, r: Mapping[str, Any], verb: str, wait: float, **params: Any) -> None:
        self._online_node(r)
        what = f"{verb} of CT {r['vmid']}"
        upid = self.api.call("POST", f"{self._ct(r)}/status/{verb}", what, **params)
        self.api.wait_task(upid, what, wait)

    def start(self, ref: CtRef) -> None:
        r = self._find(ref)
        if r.get("status") != "running":
            self._action(r, "start", self.task_timeout)

    def stop(self, ref: CtRef, timeout: float | None = None) -> None:
        r = self._find(ref)
        if r.get("status") != "running":
            return
        if timeout is not None and timeout <= 0:
            self._action(r, "stop", self.task_timeout)
            return
        secs = int(timeout if timeout is not None else 10)
        # the stop signal, then a kill after ``secs``: PVE's shutdown with forceStop
        self._action(r, "shutdown", secs + self.task_timeout, timeout=secs, forceStop=1)

    def shutdown(self, ref: CtRef, timeout: float | None = None) -> None:
        self.stop(ref, timeout if timeout is not None else 60)

    def reboot(self, ref: CtRef) -> None:
        r = self._find(ref)
        if r.get("status") != "running":
            raise BackendError(f"CT {r['vmid']} is not running; start it instead")
        self._action(r, "reboot", self.task_timeout)

    def remove(self, ref: CtRef, *, force: bool = False) -> None:
        r = self._find(ref)
        self._confs.pop((str(r.get("node")), int(r["vmid"])), None)
        self._online_node(r)
        if r.get("status") == "running" and not force:
            raise BackendError(
                f"CT {r['vmid']} is running; stop it first or remove it with --force"
            )
        what = f"destroying CT {r['vmid']}"
        params: dict[str, Any] = {"purge": 1, "destroy-unreferenced-disks": 1}
        if force:
            params["force"] = 1
        upid = self.api.call("DELETE", self._ct(r), what, **params)
        self.api.wait_task(upid, what, self.task_timeout)

    # -- status --------------------------------------------------------------------------
    def _status(self, r: Mapping[str, Any], conf: Mapping[str, Any] | None) -> ContainerStatus:
        running = r.get("status") == "running"
        tags = tuple(t for t in str(r.get("tags") or "").replace(",", ";").split(";") if t)
        image = digest = ipv4 = ipv6 = ""
        labels: dict[str, str] = {}
        if conf is not None:
            labels = description_labels(str(conf.get("description") or ""))
            for line in str(conf.get("description") or "").splitlines():
                if line.startswith("lxcri image "):
                    image = line[len("lxcri image ") :].strip()
                elif line.startswith("lxcri digest "):
                    digest = line[len("lxcri digest ") :].strip()
            net = (
                parse_property_string(str(conf.get("net0") or ""), None) if conf.get("net0") else {}
            )
            ipv4 = net.get("ip", "").split("/", 1)[0] if "/" in net.get("ip", "") else ""
            ipv6 = net.get("ip6", "").split("/", 1)[0] if "/" in net.get("ip6", "") else ""
        return ContainerStatus(
            vmid=int(r["vmid"]),
            name=str(r.get("name") or ""),
            id=str(r["vmid"]),
            status="running" if running else "exited",
            image=image,
            image_digest=digest,
            lock=str(r.get("lock") or ""),
            ipv4=ipv4,
            ipv6=ipv6,
            tags=tags,
            labels=labels,
            node=str(r.get("node") or ""),
            status_text=(
                "Up" if running else "Stopped" if r.get("status") == "stopped" else "Unknown"
            ),
            error="node offline" if r.get("status") == "unknown" else "",
        )

    def status(self, ref: CtRef) -> ContainerStatus:
        r = self._find(ref)
        conf = None
        if r.get("status") != "unknown":
            conf = self.api.get(f"{self._ct(r)}/config", f"reading CT {r['vmid']}'s config")
        return self._status(r, conf)

    def list(self) -> list[ContainerStatus]:
        """One request for the whole cluster, plus the config (image, address) of each CT
        this backend object has not seen yet, eight requests at a time (the API has no
        bulk config read): a dashboard refreshing every second sends one request a refresh.
        A config is read again after a change made through this object (``config_set``)."""
        from concurrent.futures import ThreadPoolExecutor

        vms = self._vms()

        def config(r: Mapping[str, Any]) -> Mapping[str, Any] | None:
            key = (str(r.get("node")), int(r["vmid"]))
            seen = self._confs.get(key)
            if seen is not None and seen.get("hostname") == r.get("name"):
                return seen  # (a VMID destroyed and used again has another name, mostly)
            if r.get("status") == "unknown":
                return None
            try:
                conf = self.api.get(f"{self._ct(r)}/config", f"reading CT {r['vmid']}'s config")
            except BackendError:
                return None  # destroyed meanwhile, or unreadable: listed without its image
            self._confs[key] = dict(conf or {})
            return self._confs[key]

        with ThreadPoolExecutor(max_workers=8) as pool:
            confs = list(pool.map(config, vms))
        return sorted(
            (self._status(r, c) for r, c in zip(vms, confs, strict=True)), key=lambda s: s.vmid
        )

    def storages(self) -> Sequence[StorageStatus]:
        """Each online node's storages (``pve_node``'s only, when set), one request a node,
        with lxcri's CT volumes on each, from the configs ``list`` reads (and keeps)."""
        from lxcri_pve.backends.pve_storage_status import from_api, with_volumes

        if self.cfg.pve_node:
            nodes = [checked_node(self.cfg.pve_node)]
        else:
            res = self.api.get("cluster/resources", "listing the cluster's nodes", type="node")
            nodes = sorted(
                checked_node(r.get("node"))
                for r in res or []
                if r.get("type") == "node" and r.get("status") == "online"
            )
        ours = {(s.node, s.vmid) for s in self.list() if TAG in s.tags}
        out: builtins.list[StorageStatus] = []
        for node in nodes:
            res = self.api.get(f"nodes/{node}/storage", f"listing node {node}'s storages")
            confs = {
                vmid: {k: str(v) for k, v in conf.items()}
                for (n, vmid), conf in self._confs.items()
                if n == node and (n, vmid) in ours
            }
            rows = from_api(r for r in res or [] if isinstance(r, dict))
            out += [dataclasses.replace(r, node=node) for r in with_volumes(rows, confs)]
        return out

    # -- what the API cannot do ----------------------------------------------------------
    def run_foreground(self, ref: CtRef, *, stdin: bool = False) -> int:
        r = self._find(ref)
        raise BackendError(
            f"running CT {r['vmid']} in the foreground is not possible through the Proxmox API "
            f"(it serves no console output); start it with -d, or {LOCAL_HINT} on {r['node']}"
        )

    def wait(self, ref: CtRef) -> int:
        r = self._find(ref)
        raise BackendError(
            f"the exit status of CT {r['vmid']}'s process is not available through the Proxmox "
            f"API; {LOCAL_HINT} on {r['node']}"
        )

    def exec_command(self, ref: CtRef, argv: Sequence[str], opts: ExecOptions) -> ExecCommand:
        r = self._find(ref)
        raise BackendError(
            f"exec is not possible through the Proxmox API: on node {r['node']} run "
            f"`pct exec {r['vmid']} -- CMD`, or {LOCAL_HINT}"
        )

    def logs(self, ref: CtRef, *, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        r = self._find(ref)
        raise BackendError(
            f"CT {r['vmid']}'s output is not available through the Proxmox API (it keeps only "
            f"task logs, shown in the web UI); {LOCAL_HINT} on {r['node']}"
        )

    # -- config --------------------------------------------------------------------------
    def config_get(self, ref: CtRef) -> dict[str, Any]:
        r = self._find(ref)
        self._online_node(r)
        conf = self.api.get(f"{self._ct(r)}/config", f"reading CT {r['vmid']}'s config")
        return dict(conf or {})

    def config_set(self, ref: CtRef, changes: Mapping[str, str | None]) -> None:
        changes = tag_kept(changes)
        for key, value in changes.items():
            check_pct_property(key, value, self.api.creds)
        r = self._find(ref)
        self._online_node(r)
        params: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        deleted = [k for k, v in changes.items() if v is None]
        if deleted:
            params["delete"] = ",".join(deleted)
        if not params:
            return
        self._confs.pop((str(r.get("node")), int(r["vmid"])), None)
        what = f"changing CT {r['vmid']}'s config"
        res = self.api.call("PUT", f"{self._ct(r)}/config", what, **params)
        if isinstance(res, str) and res.startswith("UPID:"):
            self.api.wait_task(res, what, self.task_timeout)
