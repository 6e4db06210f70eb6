"""The API's handlers, one per (method, schema path), shared by the HTTPS server and pvesh/pct.

A handler gets the caller (``Ctx``) and the schema-checked parameters, path
variables included, and returns the ``data`` of PVE's reply or raises
PveError. Long actions return a UPID and run as tasks: in a thread for the
HTTPS API, in the foreground for the CLIs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.pvesim import ct, lxcstart, oci
from tests.pvesim.state import (
    PVE_VERSION,
    PveError,
    Sim,
    TaskLog,
    param_error,
    run_task,
    task_log,
    task_status,
)

STREAM_CHUNK = 1 << 20


class Ctx:
    """Who calls: ``foreground`` (pct, pvesh) runs tasks to the end, printing their log."""

    def __init__(self, sim: Sim, user: str, token: bool, foreground: bool = False) -> None:
        self.sim = sim
        self.user = user
        self.token = token
        self.foreground = foreground


Handler = Callable[[Ctx, dict[str, Any]], Any]
ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES[(template, method)] = fn
        return fn

    return deco


def _task(ctx: Ctx, typ: str, vmid: Any, fn: Callable[[TaskLog], None]) -> str:
    upid, status = run_task(
        ctx.sim, typ, str(vmid), ctx.user, fn, background=not ctx.foreground, echo=ctx.foreground
    )
    if ctx.foreground and status != "OK":
        raise PveError(status)
    return upid


def _need_ct(ctx: Ctx, vmid: int) -> None:
    if not ctx.sim.exists(vmid):
        raise PveError(f"Configuration file 'nodes/{ctx.sim.node}/lxc/{vmid}.conf' does not exist")


# -- cluster / node ------------------------------------------------------------


@route("GET", "/version")
def version(ctx: Ctx, p: dict[str, Any]) -> Any:
    return PVE_VERSION


def _node_entry(sim: Sim) -> dict[str, Any]:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "id": f"node/{sim.node}",
        "type": "node",
        "node": sim.node,
        "status": "online",
        "cpu": os.getloadavg()[0] / (os.cpu_count() or 1),
        "maxcpu": os.cpu_count() or 1,
        "mem": total // 2,
        "maxmem": total,
        "uptime": int(time.monotonic()),
        "level": "",
    }


def offline_nodes(sim: Sim) -> list[str]:
    p = sim.root / "offline-nodes"
    return p.read_text().split() if p.exists() else []


@route("GET", "/cluster/resources")
def cluster_resources(ctx: Ctx, p: dict[str, Any]) -> Any:
    sim = ctx.sim
    sim.update_vmlist()  # pmxcfs would have noticed configs written behind our back
    typ = p.get("type")
    out: list[dict[str, Any]] = []
    if typ in (None, "vm"):
        for vmid in sim.vmids():
            try:
                s = ct.status(sim, vmid)
            except PveError:
                continue
            entry = {
                k: s[k]
                for k in (
                    "vmid",
                    "status",
                    "name",
                    "maxmem",
                    "maxdisk",
                    "mem",
                    "cpu",
                    "uptime",
                    "template",
                )
            }
            entry.update(id=f"lxc/{vmid}", type="lxc", node=sim.node, maxcpu=s["cpus"])
            for k in ("lock", "tags"):
                if k in s:
                    entry[k] = s[k]
            out.append(entry)
    if typ in (None, "node"):
        out.append(_node_entry(sim))
        for n in offline_nodes(sim):
            out.append({"id": f"node/{n}", "type": "node", "node": n, "status": "offline"})
    if typ in (None, "storage"):
        for st in sim.storages().values():
            out.append(
                {
                    "id": f"storage/{sim.node}/{st.id}",
                    "type": "storage",
                    "storage": st.id,
                    "node": sim.node,
                    "status": "available",
                    "plugintype": st.type,
                    "content": ",".join(st.content),
                    "shared": 0,
                }
            )
    return out


@route("GET", "/cluster/nextid")
def cluster_nextid(ctx: Ctx, p: dict[str, Any]) -> Any:
    if "vmid" in p:
        vmid = int(p["vmid"])
        if ctx.sim.exists(vmid):
            raise param_error("vmid", f"VM {vmid} already exists")
        return str(vmid)
    # PVE's JSON carries the id as a string.
    return str(ctx.sim.nextid())


@route("GET", "/cluster/status")
def cluster_status(ctx: Ctx, p: dict[str, Any]) -> Any:
    return [
        {
            "type": "node",
            "id": f"node/{ctx.sim.node}",
            "name": ctx.sim.node,
            "nodeid": 0,
            "ip": "127.0.0.1",
            "local": 1,
            "online": 1,
            "level": "",
        }
    ]


@route("GET", "/nodes")
def nodes(ctx: Ctx, p: dict[str, Any]) -> Any:
    out = [_node_entry(ctx.sim)]
    out += [
        {"node": n, "status": "offline", "type": "node", "id": f"node/{n}"}
        for n in offline_nodes(ctx.sim)
    ]
    return out


@route("GET", "/nodes/{node}/status")
def node_status(ctx: Ctx, p: dict[str, Any]) -> Any:
    e = _node_entry(ctx.sim)
    return {
        "uptime": e["uptime"],
        "cpu": e["cpu"],
        "loadavg": [f"{x:.2f}" for x in os.getloadavg()],
        "memory": {"total": e["maxmem"], "used": e["mem"], "free": e["maxmem"] - e["mem"]},
        "cpuinfo": {"cpus": e["maxcpu"], "sockets": 1, "cores": e["maxcpu"]},
        "kversion": " ".join(os.uname()),
        "pveversion": f"pve-manager/{PVE_VERSION['version']}/{PVE_VERSION['repoid']}",
    }


# -- containers ----------------------------------------------------------------


@route("GET", "/nodes/{node}/lxc")
def lxc_list(ctx: Ctx, p: dict[str, Any]) -> Any:
    # vmid is an integer here (config_list's int($vmid)); /cluster/nextid answers a string.
    ctx.sim.update_vmlist()  # pmxcfs would have noticed configs written behind our back
    out = []
    for vmid in ctx.sim.vmids():
        try:
            s = ct.status(ctx.sim, vmid)
        except PveError:
            continue
        out.append(s)
    return out


@route("POST", "/nodes/{node}/lxc")
def lxc_create(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    newconf = {k: str(v) for k, v in p.items() if k not in ct.NOT_CONFIG}
    ct.check_modify_perm(ctx.user, newconf, [])
    if ctx.sim.exists(vmid) and not p.get("force"):
        raise PveError(f"CT {vmid} already exists on node '{ctx.sim.node}'")
    return _task(ctx, "vzcreate", vmid, lambda log: ct.create(ctx.sim, p, ctx.user, log))


@route("GET", "/nodes/{node}/lxc/{vmid}")
def lxc_index(ctx: Ctx, p: dict[str, Any]) -> Any:
    _need_ct(ctx, int(p["vmid"]))
    return [{"subdir": s} for s in ("config", "pending", "status", "snapshot", "firewall", "rrd")]


@route("DELETE", "/nodes/{node}/lxc/{vmid}")
def lxc_destroy(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    conf = ctx.sim.load(vmid)
    if conf.main.get("protection") == "1":
        raise PveError(f"can't remove CT {vmid} - protection mode enabled")
    if not p.get("force") and lxcstart.state(ctx.sim, vmid)[0] == "running":
        raise PveError(f"unable to destroy CT {vmid} - container is running")
    return _task(
        ctx,
        "vzdestroy",
        vmid,
        lambda log: ct.destroy(
            ctx.sim,
            vmid,
            log,
            bool(p.get("force")),
            bool(p.get("purge")),
            bool(p.get("destroy-unreferenced-disks")),
        ),
    )


@route("GET", "/nodes/{node}/lxc/{vmid}/config")
def lxc_config_get(ctx: Ctx, p: dict[str, Any]) -> Any:
    return ct.config_for_api(ctx.sim, int(p["vmid"]), bool(p.get("current")))


@route("PUT", "/nodes/{node}/lxc/{vmid}/config")
def lxc_config_put(ctx: Ctx, p: dict[str, Any]) -> Any:
    ct.update_config(ctx.sim, int(p["vmid"]), p, ctx.user)
    return None


@route("GET", "/nodes/{node}/lxc/{vmid}/pending")
def lxc_pending(ctx: Ctx, p: dict[str, Any]) -> Any:
    return ct.pending(ctx.sim, int(p["vmid"]))


@route("GET", "/nodes/{node}/lxc/{vmid}/status")
def lxc_status_index(ctx: Ctx, p: dict[str, Any]) -> Any:
    _need_ct(ctx, int(p["vmid"]))
    return [
        {"subdir": s}
        for s in ("current", "start", "stop", "shutdown", "reboot", "suspend", "resume")
    ]


@route("GET", "/nodes/{node}/lxc/{vmid}/status/current")
def lxc_status(ctx: Ctx, p: dict[str, Any]) -> Any:
    return ct.status(ctx.sim, int(p["vmid"]))


@route("GET", "/nodes/{node}/lxc/{vmid}/interfaces")
def lxc_interfaces(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_running(ctx, vmid)
    return lxcstart.interfaces(ctx.sim, vmid)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/start")
def lxc_start(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_ct(ctx, vmid)
    if lxcstart.state(ctx.sim, vmid)[0] == "running":
        raise PveError(f"CT {vmid} already running")
    return _task(ctx, "vzstart", vmid, lambda log: ct.start(ctx.sim, vmid, log))


def _need_running(ctx: Ctx, vmid: int) -> None:
    _need_ct(ctx, vmid)
    if lxcstart.state(ctx.sim, vmid)[0] != "running":
        raise PveError(f"CT {vmid} not running")


@route("POST", "/nodes/{node}/lxc/{vmid}/status/stop")
def lxc_stop(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_running(ctx, vmid)
    return _task(ctx, "vzstop", vmid, lambda log: ct.stop(ctx.sim, vmid, log))


@route("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown")
def lxc_shutdown(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_running(ctx, vmid)
    timeout = int(p.get("timeout", 60))
    return _task(
        ctx,
        "vzshutdown",
        vmid,
        lambda log: ct.stop(ctx.sim, vmid, log, timeout=timeout, force=bool(p.get("forceStop"))),
    )


@route("POST", "/nodes/{node}/lxc/{vmid}/status/reboot")
def lxc_reboot(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_running(ctx, vmid)
    return _task(ctx, "vzreboot", vmid, lambda log: ct.reboot(ctx.sim, vmid, log, p.get("timeout")))


@route("POST", "/nodes/{node}/lxc/{vmid}/move_volume")
def lxc_move_volume(ctx: Ctx, p: dict[str, Any]) -> Any:
    vmid = int(p["vmid"])
    _need_ct(ctx, vmid)
    key = str(p["volume"])
    target = p.get("target-vmid")
    storage = p.get("storage")
    if target is not None and storage:
        msg = "either set 'storage' or 'target-vmid', but not both"
        raise param_error("target-vmid", msg)
    if target is not None:
        tkey = str(p.get("target-volume") or key)
        ct.check_reassign(ctx.sim, vmid, key, int(target), tkey)
        return _task(
            ctx,
            "move_volume",
            f"{vmid}-{key}>{target}-{tkey}",
            lambda log: ct.reassign_volume(ctx.sim, vmid, key, int(target), tkey, log),
        )
    if storage:
        ct.check_move_to_storage(ctx.sim, vmid, key)
        return _task(
            ctx,
            "move_volume",
            vmid,
            lambda log: ct.move_to_storage(
                ctx.sim, vmid, key, str(storage), bool(p.get("delete")), log
            ),
        )
    msg = "both 'storage' and 'target-vmid' missing, either needs to be set"
    raise param_error("target-vmid", msg)


# -- tasks -------------------------------------------------------------------------


@route("GET", "/nodes/{node}/tasks")
def tasks_list(ctx: Ctx, p: dict[str, Any]) -> Any:
    out = []
    for f in sorted(ctx.sim.tasks.glob("UPID:*:")):
        info = task_status(ctx.sim, f.name)
        if "vmid" in p and info["id"] != str(p["vmid"]):
            continue
        out.append(info)
    limit = int(p.get("limit", 50))
    return out[-limit:] if limit else out


@route("GET", "/nodes/{node}/tasks/{upid}/status")
def task_status_get(ctx: Ctx, p: dict[str, Any]) -> Any:
    return task_status(ctx.sim, str(p["upid"]))


@route("GET", "/nodes/{node}/tasks/{upid}/log")
def task_log_get(ctx: Ctx, p: dict[str, Any]) -> Any:
    return task_log(ctx.sim, str(p["upid"]), int(p.get("start", 0)), int(p.get("limit", 50)))


# -- storage -----------------------------------------------------------------------


@route("GET", "/nodes/{node}/storage")
def storage_list(ctx: Ctx, p: dict[str, Any]) -> Any:
    out = []
    for st in ctx.sim.storages().values():
        if p.get("content") and p["content"] not in st.content:
            continue
        if p.get("storage") and p["storage"] != st.id:
            continue
        if st.type == "zfspool" and st.pool:
            total, used, avail = _zfs_pool_stats(st.pool)
        else:
            usage = shutil.disk_usage(st.path if st.path else ctx.sim.root)
            total, used, avail = usage.total, usage.used, usage.free
        out.append(
            {
                "storage": st.id,
                "type": st.type,
                "content": ",".join(st.content),
                "active": 1,
                "enabled": 1,
                "shared": 0,
                "total": total,
                "used": used,
                "avail": avail,
            }
        )
    return out


def _zfs_pool_stats(pool: str) -> tuple[int, int, int]:
    """(total, used, avail) as PVE's ZFSPoolPlugin reads them: ``zfs get -o value -Hp
    available,used POOL``, total their sum."""
    res = subprocess.run(
        ["zfs", "get", "-o", "value", "-Hp", "available,used", pool],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        raise PveError(f"zfs error: {res.stderr.strip()}")
    avail, used = (int(x) for x in res.stdout.split())
    return avail + used, used, avail


def _content(ctx: Ctx, sid: str) -> list[dict[str, Any]]:
    st = ctx.sim.storage(sid)
    out: list[dict[str, Any]] = []
    if st.type == "dir" and st.path is not None:
        for sub, kind in (
            ("template/cache", "vztmpl"),
            ("template/iso", "iso"),
            ("snippets", "snippets"),
        ):
            for f in sorted((st.path / sub).glob("*")):
                if f.is_file():
                    fmt = (
                        "tzst"
                        if f.name.endswith(".zst")
                        else "tgz"
                        if f.name.endswith("gz")
                        else "raw"
                    )
                    out.append(
                        {
                            "volid": f"{sid}:{kind}/{f.name}",
                            "content": kind,
                            "format": fmt,
                            "size": f.stat().st_size,
                            "ctime": int(f.stat().st_ctime),
                        }
                    )
        for d in sorted((st.path / "images").glob("*/*")):
            out.append(
                {
                    "volid": f"{sid}:{d.parent.name}/{d.name}",
                    "content": "rootdir",
                    "format": "subvol",
                    "size": 0,
                    "vmid": int(d.parent.name),
                }
            )
    return out


@route("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(ctx: Ctx, p: dict[str, Any]) -> Any:
    out = _content(ctx, str(p["storage"]))
    if p.get("content"):
        want = {"rootdir", "images"} if p["content"] in ("rootdir", "images") else {p["content"]}
        out = [e for e in out if e["content"] in want]
    if "vmid" in p:
        out = [e for e in out if e.get("vmid") == int(p["vmid"])]
    return out


def _volume_id(p: dict[str, Any]) -> str:
    vol = str(p["volume"])
    return vol if ":" in vol else f"{p['storage']}:{vol}"


@route("GET", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume(ctx: Ctx, p: dict[str, Any]) -> Any:
    volid = _volume_id(p)
    path, _ = ctx.sim.volume_path(volid)
    if not path.exists():
        raise PveError(f"volume '{volid}' does not exist")
    return {
        "path": str(path),
        "size": path.stat().st_size,
        "format": "raw",
        "used": path.stat().st_size,
    }


@route("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume_delete(ctx: Ctx, p: dict[str, Any]) -> Any:
    volid = _volume_id(p)
    path, kind = ctx.sim.volume_path(volid)
    if not path.exists():
        raise PveError(f"volume '{volid}' does not exist")

    def work(log: TaskLog) -> None:
        if kind == "images":
            ct.free_volume(ctx.sim, volid)
        else:
            path.unlink()
        log(f"Removed volume '{volid}'")

    return _task(ctx, "imgdel", volid, work)


VZTMPL_EXT = re.compile(r"\.tar(?:\.(?:gz|xz|zst|bz2))?$")


def _normalize(name: str) -> str:
    # PVE::Storage::normalize_content_filename
    return re.sub(r"[^-a-zA-Z0-9_.]", "_", name)


@route("POST", "/nodes/{node}/storage/{storage}/upload")
def storage_upload(ctx: Ctx, p: dict[str, Any]) -> Any:
    st = ctx.sim.storage(str(p["storage"]))
    content = str(p["content"])
    if content not in st.content:
        raise PveError(f"storage '{st.id}' does not support '{content}' content")
    upload = p.get("_upload")
    if not isinstance(upload, dict):
        raise param_error("filename", "missing file upload")
    filename = _normalize(str(upload["name"]))
    if content == "vztmpl" and not VZTMPL_EXT.search(filename):
        raise param_error("filename", "wrong file extension")
    if content == "iso" and not filename.endswith((".iso", ".img")):
        raise param_error("filename", "wrong file extension")
    assert st.path is not None
    sub = {"vztmpl": "template/cache", "iso": "template/iso"}.get(content, "import")
    target = st.path / sub / filename
    tmpfile = Path(str(upload["tmp"]))

    def work(log: TaskLog) -> None:
        if p.get("checksum"):
            h = hashlib.new(str(p["checksum-algorithm"]))
            with open(tmpfile, "rb") as f:
                while chunk := f.read(STREAM_CHUNK):
                    h.update(chunk)
            if h.hexdigest() != str(p["checksum"]).lower():
                tmpfile.unlink(missing_ok=True)
                raise PveError(
                    f"checksum mismatch: got '{h.hexdigest()}' != expect '{p['checksum']}'"
                )
            log(f"calculating checksum of '{tmpfile}'..checksum verification successful")
        log(f"starting file import from: {tmpfile}")
        log(f"target node: {ctx.sim.node}")
        log(f"target file: {target}")
        log(f"file size is: {tmpfile.stat().st_size}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmpfile), target)
        log("finished file import successfully")

    return _task(ctx, "imgcopy", "", work)


@route("POST", "/nodes/{node}/storage/{storage}/oci-registry-pull")
def storage_oci_pull(ctx: Ctx, p: dict[str, Any]) -> Any:
    st = ctx.sim.storage(str(p["storage"]))
    if "vztmpl" not in st.content or st.path is None:
        raise PveError(f"storage '{st.id}' does not support 'vztmpl' content")
    ref = str(p["reference"])
    filename = _normalize(str(p.get("filename") or ref.replace("/", "_").replace(":", "_")))
    if not filename.endswith(".tar"):
        filename += ".tar"
    target = st.path / "template" / "cache" / filename
    insecure = [h for h in os.environ.get("PVESIM_INSECURE_REGISTRIES", "").split(",") if h]

    def work(log: TaskLog) -> None:
        host = ref.split("/", 1)[0] if "/" in ref else ""
        cmd = ["skopeo", "copy", "--quiet"]
        if host in insecure:
            cmd.append("--src-tls-verify=false")
        tmp = target.with_name(f".{target.name}.part")
        tmp.unlink(missing_ok=True)
        res = subprocess.run(
            [*cmd, f"docker://{ref}", f"oci-archive:{tmp}:{ref.rsplit(':', 1)[1]}"],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise PveError(f"failed to pull '{ref}': {res.stderr.strip()}")
        if not oci.has_layout(tmp):
            tmp.unlink(missing_ok=True)
            raise PveError("pulled image is not an OCI archive")
        os.replace(tmp, target)
        log(f"downloaded '{ref}' to '{st.id}:vztmpl/{filename}'")

    return _task(ctx, "download", "", work)


@route("POST", "/access/ticket")
def access_ticket(ctx: Ctx, p: dict[str, Any]) -> Any:
    raise AssertionError("handled by the request handler")
