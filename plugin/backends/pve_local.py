"""The pve-local backend: Proxmox VE CTs on this node, as root, through pct and /etc/pve.

How a CT is made (``create``), and why not ``pct create``: PVE 9.1's OCI path
(``pct create VMID STORAGE:vztmpl/IMAGE.tar``) unpacks an oci-archive into a
fresh volume each time. lxcri builds the rootfs itself from its shared layer
chain instead (a zfs clone costs nothing; see ``pve_storage``), then writes
``VMID.conf`` in PVE 9.1's OCI encoding (``render_pve_config``: ``entrypoint``
with PVE's quoting, ``lxc.environment.runtime`` lines, ``lxc.init.uid/gid``,
``unprivileged: 1``, ``tags: lxcri``, ``cmode: console``, ``net0`` with
``host-managed=1``) under PVE's config lock, as PVE's create_and_lock_config
does: first a file holding only ``lock: create`` reserves the VMID, then the
full config replaces it. The hookscript, the raw ``lxc.*`` keys and bind mounts
are what only root@pam may set; they go in the file. Volumes pct can allocate
(``-v NAME:/path`` and anonymous ones: a new ``mpN`` on the rootfs storage,
owned by the CT and destroyed with it) go through ``pct set``, as do later
changes (``config_set``); start, stop, shutdown, reboot and destroy are pct's.

A CT is lxcri's when its config carries the ``lxcri`` tag and lxcri holds a
record of it (``<root>/pve/VMID/state.json``: image, digest, ports, storage);
its name is its ``hostname``. ``list`` reads every VMID.conf and runs one
``lxc-ls --fancy`` for the running state and addresses of all of them.

Logs: the CT's console (its init's stdout/stderr, ``cmode: console``) is kept
by LXC in ``<root>/pve/VMID/console.log`` (a raw ``lxc.console.logfile``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_pve.backends import pve_storage
from lxcri_pve.backends.pve_generations import save_generations
from lxcri_pve.backends.pve_hookscript import install as install_hookscript
from lxcri_pve.backends.pve_lock import LOCK_DIR, config_lock
from lxcri_pve.backends.pve_state import (
    CONSOLE_LOG,
    TAG,
    CtState,
    PortRecord,
    load_state,
    published,
    save_state,
    split_tags,
    state_dir,
    tag_kept,
    with_lxcri_tag,
)

from lxcri_core.backend import (
    ALL_FEATURES,
    Container,
    ContainerStatus,
    CreateRequest,
    CtRef,
    ExecCommand,
    ExecOptions,
    Feature,
)
from lxcri_core.errors import (
    BackendError,
    ContainerNotFound,
    CorruptState,
    LockTimeout,
)
from lxcri_core.log import get_logger
from lxcri_core.spec.model import PortMapping

if TYPE_CHECKING:
    from lxcri_pve.backends.pve_storage_status import StorageStatus

    from lxcri_core.backend import Generation, UpgradeRequest, UpgradeResult
    from lxcri_core.config import Config
    from lxcri_core.spec.pve_config import PveConfig

log = get_logger(__name__)

#: Size of a volume pct allocates for ``-v``, in GiB.
VOLUME_GIB = 1
_NEW_DISK = re.compile(r"^[a-zA-Z][\w.-]*:\d+$")


def _one_line(text: str) -> str:
    """A tool's error output as one line (PVE's 400 answers span several)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines)[:2000]


class PveLocalBackend:
    """``Backend`` for a Proxmox VE node, run as root on it."""

    name = "pve-local"
    features: frozenset[Feature] = ALL_FEATURES
    hint = ""

    def __init__(self, cfg: Config, lock_dir: Path = LOCK_DIR) -> None:
        self.cfg = cfg
        self.lock_dir = lock_dir
        if not (cfg.pve_root / "nodes").is_dir():
            raise BackendError(
                f"{cfg.pve_root} is not a Proxmox VE cluster file system (no nodes/ in it); "
                "run on a PVE node or use --backend lxc or pve-api"
            )
        self.node = cfg.pve_node or self._local_node()

    def _local_node(self) -> str:
        local = self.cfg.pve_root / "local"
        if local.is_symlink():
            return Path(os.readlink(local)).name
        return socket.gethostname().split(".")[0]

    # -- paths and commands ----------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.cfg.pve_root / "nodes" / self.node / "lxc"

    def conf_path(self, vmid: int) -> Path:
        return self.conf_dir / f"{vmid}.conf"

    def _lock(self, vmid: int) -> contextlib.AbstractContextManager[None]:
        return config_lock(vmid, self.cfg.lock_timeout, self.lock_dir)

    def _run(self, argv: Sequence[str], what: str, timeout: float = 600) -> str:
        try:
            res = subprocess.run(
                list(argv), capture_output=True, text=True, check=False, timeout=timeout
            )
        except FileNotFoundError:
            raise BackendError(
                f"{what}: {argv[0]} is not installed (is this a PVE node?)"
            ) from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"{what}: `{' '.join(argv)}` took over {timeout:g} s") from None
        if res.returncode != 0:
            why = _one_line(res.stderr) or _one_line(res.stdout) or f"exit {res.returncode}"
            raise BackendError(f"{what}: {why}")
        return res.stdout

    def _pct(self, *args: str, what: str, timeout: float = 600) -> str:
        out = self._run(["pct", *args], what, timeout)
        # a failing post-start/pre-stop hook is only a warning in PVE's task: say it here too
        for line in out.splitlines():
            if line.startswith(("WARN: ", "lxcri hookscript: ")) and "failed" in line:
                log.warning(line.removeprefix("WARN: "))
        return out

    # -- configs ---------------------------------------------------------------------
    def _read_conf(self, vmid: int) -> PveConfig | None:
        from lxcri_core.errors import SpecError
        from lxcri_core.spec.pve_config import parse_pve_config

        try:
            text = self.conf_path(vmid).read_text()
        except FileNotFoundError:
            return None
        try:
            return parse_pve_config(text)
        except SpecError as e:
            raise BackendError(f"CT {vmid}: {self.conf_path(vmid)}: {e}") from None

    def _write_conf(self, vmid: int, text: str) -> None:
        """Replace VMID.conf at once (pmxcfs renames atomically); caller holds the lock."""
        path = self.conf_path(vmid)
        tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)

    def _confs(self) -> dict[int, PveConfig]:
        """Every lxcri CT's config (the ``lxcri`` tag), read in one pass."""
        out = {}
        for p in self.conf_dir.glob("*.conf"):
            if not p.stem.isdigit():
                continue
            with contextlib.suppress(BackendError):
                conf = self._read_conf(int(p.stem))
                if conf is not None and TAG in _tags(conf):
                    out[int(p.stem)] = conf
        return out

    def _resolve(self, ref: CtRef) -> int:
        """The VMID of an lxcri CT named by ``ref`` (VMID or hostname)."""
        vmid = ref.vmid
        if vmid is not None:
            conf = self._read_conf(vmid)
            if conf is None or TAG not in _tags(conf):
                if conf is not None:
                    raise ContainerNotFound(f"CT {vmid} is not an lxcri container (no lxcri tag)")
                raise ContainerNotFound(f"no CT {vmid} on node {self.node}")
            return vmid
        hits = [v for v, c in self._confs().items() if c.main.get("hostname") == ref.text]
        if not hits:
            raise ContainerNotFound(f"no lxcri CT named {ref.text} on node {self.node}")
        if len(hits) > 1:
            raise BackendError(
                f"several CTs are named {ref.text} ({', '.join(map(str, sorted(hits)))}); "
                "use the VMID"
            )
        return hits[0]

    # -- create ------------------------------------------------------------------------
    def _next_vmid(self) -> int:
        out = self._run(
            ["pvesh", "get", "/cluster/nextid", "--output-format", "json"], "allocating a VMID"
        )
        text = out.strip().strip('"')
        if not text.isdigit():
            raise BackendError(f"allocating a VMID: pvesh answered {out.strip()!r}")
        return int(text)

    def _reserve(self, vmid: int | None) -> int:
        """Take a VMID: its config holding only ``lock: create`` (PVE's create_and_lock_config)."""
        for _ in range(20):
            want = vmid if vmid is not None else self._next_vmid()
            if not 100 <= want <= 999999999:
                raise BackendError(f"VMID {want} is out of range 100-999999999")
            with self._lock(want):
                if self.conf_path(want).exists():
                    if vmid is not None:
                        raise BackendError(f"CT {want} already exists on node {self.node}")
                    continue  # another creator took it since nextid; ask again
                self.conf_dir.mkdir(parents=True, exist_ok=True)
                self._write_conf(want, "lock: create\n")
                return want
        raise BackendError("could not allocate a free VMID (another creator keeps taking them)")

    def _image(self, req: CreateRequest) -> tuple[Any, Any]:
        from lxcri_core.images import resolve_or_pull

        return resolve_or_pull(self.cfg, req.image, pull=req.pull, insecure=req.insecure)

    def create(self, req: CreateRequest) -> Container:
        from lxcri_core.fsutil import flocked

        name = req.pct.get("hostname") or req.options.name or req.options.hostname or ""
        if not name:
            return self._create(req, "")
        from lxcri_core.spec.options import parse_hostname

        name = parse_hostname(name, "--name")  # it is the CT's hostname (and a file name here)
        # two creates of one name: the second waits, then finds the name taken
        locks = self.cfg.root / "pve" / ".names"
        try:
            with flocked(locks / name, timeout=self.cfg.lock_timeout):
                return self._create(req, name)
        except LockTimeout as e:
            raise BackendError(str(e)) from None

    def _create(self, req: CreateRequest, name: str) -> Container:
        from lxcri_core.media import Manifest, load_json
        from lxcri_core.spec.build import build_spec
        from lxcri_core.spec.model import IdMap

        cfg = self.cfg
        opts = req.options
        st = pve_storage.rootfs_storage(cfg)
        hook_path = pve_storage.snippet_path(cfg, cfg.pve_hookscript)
        opts = dataclasses.replace(
            opts, name=name, hostname=name or None, bridge=opts.bridge or cfg.pve_bridge
        )
        store, rec = self._image(req)
        manifest = Manifest.parse(store.read_blob(rec.descriptor.digest))
        image_config = load_json(store.read_blob(manifest.config.digest), "image config")
        # refuse bad options before anything exists (names of USER resolve later)
        probe = build_spec(image_config, dataclasses.replace(opts, user="0", group_add=()), None)
        if probe.ports and probe.network.mode == "none":
            raise BackendError("-p needs a network: a CT with --network none has no ports")
        if name:
            taken = [v for v, c in self._confs().items() if c.main.get("hostname") == name]
            if taken:
                raise BackendError(f"an lxcri CT named {name} exists already (VMID {taken[0]})")
        idmap = IdMap(100000, 65536) if probe.security.unprivileged else None
        vmid = self._reserve(req.vmid)
        undo: list[Any] = [lambda: self._drop_conf(vmid)]
        try:
            with store.in_use():
                volid, rootpath = pve_storage.create_rootfs(
                    cfg, st, store, rec.descriptor.digest, idmap, vmid, cfg.pve_rootfs_size
                )
            undo.append(lambda: pve_storage.remove_rootfs(cfg, st, vmid))
            if not name:
                name = f"ct{vmid}"
                opts = dataclasses.replace(opts, name=name, hostname=name)
            spec = build_spec(image_config, opts, rootpath, image=rec.name)
            spec = dataclasses.replace(spec, ports=_free_ports(spec.ports))
            conf, extra = self._render(spec, vmid, st.id, volid, rec, req)
            record = CtState(
                vmid=vmid,
                name=name,
                image=rec.name,
                image_digest=rec.descriptor.digest,
                storage=st.id,
                storage_type=st.type,
                rootfs_volume=volid,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                ports=tuple(
                    PortRecord(p.host_port, p.container_port, p.protocol, p.host_ip)
                    for p in spec.ports
                ),
                stop_timeout=spec.stop_timeout,
                lxcpath=str(cfg.pve_lxcpath),
                restart=spec.restart.name,
                max_retries=spec.restart.max_retries,
                healthcheck=dataclasses.asdict(spec.healthcheck) if spec.healthcheck else None,
                labels=dict(spec.labels),
            )
            undo.append(lambda: shutil.rmtree(state_dir(cfg.root, vmid), ignore_errors=True))
            save_state(cfg.root, self._with_net(record, conf))
            from lxcri_pve.backends.pve_upgrade import first_generation

            save_generations(
                cfg.root, vmid, [first_generation(image_config, name, rootpath, record)]
            )
            conf.main.add("lxc.console.logfile", str(state_dir(cfg.root, vmid) / CONSOLE_LOG))
            install_hookscript(hook_path, cfg.root)
            with self._lock(vmid):
                self._write_conf(vmid, conf.render())
            if extra:
                # pct checks these against PVE's schema and allocates new volumes
                args = [a for k, v in extra.items() for a in (f"--{k}", v)]
                self._pct("set", str(vmid), *args, what=f"creating CT {vmid}")
                final = self._read_conf(vmid)
                if final is not None:
                    save_state(cfg.root, self._with_net(record, final))
            self.private_volumes(vmid)  # also the mpN volumes pct allocated
        except BaseException:
            for fn in reversed(undo):
                with contextlib.suppress(Exception):
                    fn()
            raise
        return Container(vmid=vmid, name=name, id=str(vmid), backend=self.name, node=self.node)

    # -- image lifecycle (pve_upgrade) ---------------------------------------------------
    def upgrade(self, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
        from lxcri_pve.backends.pve_upgrade import upgrade

        return upgrade(self, ref, req)

    def rollback(self, ref: CtRef) -> UpgradeResult:
        from lxcri_pve.backends.pve_upgrade import rollback

        return rollback(self, ref)

    def history(self, ref: CtRef) -> Sequence[Generation]:
        from lxcri_pve.backends.pve_upgrade import history

        return history(self, ref)

    def private_volumes(self, vmid: int) -> list[tuple[Path, int | None, bool]]:
        """Keep the directories of the CT's rootfs and mpN volumes from other host users
        (pve_storage.private_parent): the image's setuid and capability files are in them.
        Run at create and by the hookscript's pre-start (a CT from before lxcri did this,
        a volume PVE moved or restored). Returns what ``tighten_volumes`` did."""
        from lxcri_core.spec.pve_config import parse_property_string

        conf = self._read_conf(vmid)
        if conf is None:
            return []
        m = conf.main
        keys = ["rootfs", *(k for k in m.options() if re.fullmatch(r"mp\d+", k))]
        volids = [parse_property_string(m.get(k) or "", "volume").get("volume", "") for k in keys]
        return pve_storage.tighten_volumes(
            self.cfg, vmid, [v for v in volids if v], m.get("unprivileged") == "1"
        )

    def storages(self) -> list[StorageStatus]:
        """The node's storages (one ``pvesm status``) with lxcri's CT volumes on each."""
        from lxcri_pve.backends.pve_storage_status import (
            PVESM_STATUS,
            parse_pvesm_status,
            with_volumes,
        )

        text = self._run(PVESM_STATUS, "listing the node's storages", timeout=60)
        confs = {vmid: conf.main.options() for vmid, conf in self._confs().items()}
        return with_volumes(parse_pvesm_status(text), confs)

    @staticmethod
    def _with_net(record: CtState, conf: PveConfig) -> CtState:
        """The record with net0's address mode, device and bridge as the config has them."""
        nic = _net0(conf)
        return dataclasses.replace(
            record,
            ipv4=nic.get("ip", "manual"),
            netdev=nic.get("name", "eth0"),
            bridge=nic.get("bridge", ""),
        )

    def _render(
        self, spec: Any, vmid: int, sid: str, volid: str, rec: Any, req: CreateRequest
    ) -> tuple[PveConfig, dict[str, str]]:
        from lxcri_core.errors import SpecError
        from lxcri_core.spec.pve_config import (
            parse_property_string,
            render_property_string,
            render_pve_config,
        )

        digest = rec.descriptor.digest
        try:
            conf = render_pve_config(
                spec,
                vmid,
                storage=sid,
                rootfs_volume=f"{volid},size={self.cfg.pve_rootfs_size}G",
                volume_size_gb=VOLUME_GIB,
                hookscript=self.cfg.pve_hookscript,
                description=f"lxcri image {rec.name}\n{digest}",
                tags=(TAG,),
            )
        except SpecError as e:
            raise BackendError(f"CT {vmid}: {e}") from None
        m = conf.main
        nic = _net0(conf)
        if nic and not nic.get("hwaddr"):
            # as PVE's create does (Proxmox's OUI BC:24:11): a MAC that stays across starts,
            # so a DHCP server hands the CT the same lease again
            nic["hwaddr"] = "BC:24:11:" + ":".join(f"{b:02X}" for b in os.urandom(3))
            m.set("net0", render_property_string(nic, None, ("name",)))
        extra: dict[str, str] = {}
        for key, value in req.pct.items():
            if key.startswith("lxc.") or key in ("hookscript", "rootfs", "unprivileged", "lock"):
                raise BackendError(f"--{key} is lxcri's to set on pve-local")
            if key == "tags":
                try:
                    m.set("tags", with_lxcri_tag(value))
                except SpecError as e:
                    raise BackendError(f"--tags: {e}") from None
            elif key != "hostname":  # the name, already in the config
                extra[key] = value
        # Volumes pct can allocate (STORAGE:SIZE) are left to `pct set` after the write.
        for key in [k for k in m.options() if re.fullmatch(r"mp\d+", k)]:
            value = m.get(key) or ""
            if key in extra:
                continue
            if _NEW_DISK.match(parse_property_string(value, "volume").get("volume", "")):
                extra[key] = value
                m.delete(key)
        return conf, extra

    def _drop_conf(self, vmid: int) -> None:
        with self._lock(vmid):
            self.conf_path(vmid).unlink(missing_ok=True)

    # -- lifecycle ---------------------------------------------------------------------
    def _ensure_hook(self) -> None:
        install_hookscript(
            pve_storage.snippet_path(self.cfg, self.cfg.pve_hookscript), self.cfg.root
        )

    def start(self, ref: CtRef) -> None:
        from lxcri_pve.backends.pve_supervise import RESTARTS

        vmid = self._resolve(ref)
        self._ensure_hook()  # its pre-start keeps the CT's volumes private (private_volumes)
        # a start asked for begins a new count of restarts, as in docker
        (state_dir(self.cfg.root, vmid) / RESTARTS).unlink(missing_ok=True)
        self._pct("start", str(vmid), what=f"starting CT {vmid}")

    def stop(self, ref: CtRef, timeout: float | None = None) -> None:
        vmid = self._resolve(ref)
        if self._state(vmid)[0] != "RUNNING":
            return
        if timeout is None:
            st = load_state(self.cfg.root, vmid)
            timeout = st.stop_timeout if st else 10
        if timeout <= 0:
            self._pct("stop", str(vmid), what=f"stopping CT {vmid}")
            return
        t = str(max(1, round(timeout)))
        self._pct(
            "shutdown",
            str(vmid),
            "--timeout",
            t,
            "--forceStop",
            "1",
            what=f"stopping CT {vmid}",
            timeout=timeout + 120,
        )

    def shutdown(self, ref: CtRef, timeout: float | None = None) -> None:
        vmid = self._resolve(ref)
        args = ["--timeout", str(max(1, round(timeout)))] if timeout is not None else []
        self._pct("shutdown", str(vmid), *args, what=f"shutting down CT {vmid}")

    def reboot(self, ref: CtRef) -> None:
        vmid = self._resolve(ref)
        self._ensure_hook()
        st = load_state(self.cfg.root, vmid)
        # the app is PID 1 and may ignore its halt signal: PVE forces the stop after this
        t = str(max(1, st.stop_timeout if st else 10))
        self._pct(
            "reboot", str(vmid), "--timeout", t, what=f"rebooting CT {vmid}", timeout=int(t) + 120
        )

    def remove(self, ref: CtRef, *, force: bool = False) -> None:
        vmid = self._resolve(ref)
        running = self._state(vmid)[0] == "RUNNING"
        if running and not force:
            raise BackendError(f"CT {vmid} is running; stop it first or remove it with --force")
        if running:
            self._pct("stop", str(vmid), what=f"stopping CT {vmid}")
        # pct destroys the CT's own volumes (rootfs, mpN) and the config, under its lock
        self._pct("destroy", str(vmid), "--purge", "1", what=f"destroying CT {vmid}")
        try:
            st = load_state(self.cfg.root, vmid)
        except CorruptState:
            st = None  # an unreadable record must not keep the rest alive: clean up by VMID
        storages = pve_storage.read_storages(self.cfg.pve_root)
        for storage in storages.values():
            if st is None or storage.id == st.storage:
                pve_storage.forget_rootfs(self.cfg, storage, vmid)
        if st is None or st.ports:
            from lxcri_pve.backends.pve_hookscript import chain_id

            from lxcri_core.network.ports import DEFAULT_TABLE, unpublish

            with contextlib.suppress(Exception):
                unpublish(chain_id(vmid), table=st.nft_table if st else DEFAULT_TABLE)
        shutil.rmtree(state_dir(self.cfg.root, vmid), ignore_errors=True)

    # -- status ------------------------------------------------------------------------
    def _state(self, vmid: int) -> tuple[str, int | None, str]:
        res = subprocess.run(
            ["lxc-info", "-P", str(self.cfg.pve_lxcpath), "-n", str(vmid), "-s", "-p", "-i"],
            capture_output=True,
            text=True,
            check=False,
        )
        info: dict[str, str] = {}
        for line in res.stdout.splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
        pid = info.get("PID", "")
        return info.get("State", "STOPPED"), int(pid) if pid.isdigit() else None, info.get("IP", "")

    def _states(self) -> dict[int, tuple[str, int | None, str]]:
        """State, PID and first IPv4 of every CT, from one ``lxc-ls --fancy``."""
        res = subprocess.run(
            ["lxc-ls", "-P", str(self.cfg.pve_lxcpath), "--fancy", "-F", "NAME,STATE,PID,IPV4"],
            capture_output=True,
            text=True,
            check=False,
        )
        out: dict[int, tuple[str, int | None, str]] = {}
        for line in res.stdout.splitlines()[1:]:
            parts = line.split(None, 3)
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            ip = parts[3].split(",")[0].strip() if len(parts) > 3 else ""
            pid = parts[2]
            out[int(parts[0])] = (
                parts[1],
                int(pid) if pid.isdigit() else None,
                "" if ip == "-" else ip,
            )
        return out

    def _status(
        self, vmid: int, conf: PveConfig, state: tuple[str, int | None, str]
    ) -> ContainerStatus:
        error = ""
        try:
            st = load_state(self.cfg.root, vmid)
        except CorruptState as e:
            st, error = None, str(e)
        lxc_state, pid, ip = state
        running = lxc_state in ("RUNNING", "STARTING", "STOPPING", "FROZEN")
        from lxcri_pve.backends.pve_supervise import health, restarts

        sdir = state_dir(self.cfg.root, vmid)
        clog = sdir / CONSOLE_LOG
        status = "running" if running else ("exited" if clog.exists() else "created")
        pub = published(self.cfg.root, vmid)
        ports = tuple(
            PortMapping(
                p.container_port, p.host_port, "udp" if p.proto == "udp" else "tcp", p.host_ip
            )
            for p in (st.ports if st else ())
        )
        return ContainerStatus(
            vmid=vmid,
            name=conf.main.get("hostname") or f"CT{vmid}",
            id=str(vmid),
            status=status,  # type: ignore[arg-type]
            image=st.image if st else "",
            image_digest=st.image_digest if st else "",
            lock=conf.main.get("lock") or "",
            ipv4=(pub.get("ipv4") or ip or (st.ipv4.split("/")[0] if st and "/" in st.ipv4 else ""))
            if running
            else "",
            ports=ports,
            created=st.created if st else "",
            pid=pid if running else None,
            storage=st.storage if st else "",
            labels=dict(st.labels) if st else {},
            tags=tuple(_tags(conf)),
            node=self.node,
            health=health(sdir) if running else "",
            restarts=int(restarts(sdir).get("count", 0)),
            status_text="Up" if running else "Exited" if status == "exited" else "Created",
            error=error,
        )

    def status(self, ref: CtRef) -> ContainerStatus:
        vmid = self._resolve(ref)
        conf = self._read_conf(vmid)
        if conf is None:
            raise ContainerNotFound(f"no CT {vmid} on node {self.node}")
        return self._status(vmid, conf, self._state(vmid))

    def list(self) -> list[ContainerStatus]:
        confs = self._confs()
        states = self._states() if confs else {}
        return [
            self._status(v, confs[v], states.get(v, ("STOPPED", None, ""))) for v in sorted(confs)
        ]

    # -- running things ----------------------------------------------------------------
    def run_foreground(self, ref: CtRef, *, stdin: bool = False) -> int:
        vmid = self._resolve(ref)
        if stdin:
            raise BackendError("pve-local cannot attach stdin to a CT's init; run it with -d")
        self.start(CtRef(str(vmid)))
        for chunk in self.logs(CtRef(str(vmid)), follow=True):
            os.write(1, chunk)
        return self.wait(CtRef(str(vmid)))

    def wait(self, ref: CtRef) -> int:
        """Wait for the CT to stop; LXC keeps no exit status of init: 0."""
        vmid = self._resolve(ref)
        while self._state(vmid)[0] != "STOPPED":
            time.sleep(0.2)
        return 0

    def exec_command(self, ref: CtRef, argv: Sequence[str], opts: ExecOptions) -> ExecCommand:
        vmid = self._resolve(ref)
        if opts.user or opts.workdir:
            raise BackendError(
                "pct exec has no --user or --workdir; run the command through a shell"
            )
        if not argv:
            raise BackendError("exec needs a command")
        envs = [e for e in opts.env if "=" in e]
        prefix = ["env", *envs] if envs else []
        return ExecCommand(["pct", "exec", str(vmid), "--", *prefix, *argv], dict(os.environ))

    def logs(self, ref: CtRef, *, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        vmid = self._resolve(ref)
        path = state_dir(self.cfg.root, vmid) / CONSOLE_LOG
        return _follow(path, tail, (lambda: self._state(vmid)[0] != "STOPPED") if follow else None)

    # -- config --------------------------------------------------------------------------
    def config_get(self, ref: CtRef) -> dict[str, Any]:
        import json

        vmid = self._resolve(ref)
        out = self._run(
            [
                "pvesh",
                "get",
                f"/nodes/{self.node}/lxc/{vmid}/config",
                "--output-format",
                "json",
            ],
            f"reading the config of CT {vmid}",
        )
        data: dict[str, Any] = json.loads(out)
        return data

    def config_set(self, ref: CtRef, changes: Mapping[str, str | None]) -> None:
        vmid = self._resolve(ref)
        args: list[str] = []
        changes = tag_kept(changes)
        delete = [k for k, v in changes.items() if v is None]
        for key, value in changes.items():
            if value is None:
                continue
            if key.startswith("lxc.") or key == "hookscript":
                raise BackendError(f"--{key} is lxcri's to set on pve-local")
            args += [f"--{key}", value]
        if delete:
            args += ["--delete", ",".join(delete)]
        if args:
            self._pct("set", str(vmid), *args, what=f"changing the config of CT {vmid}")


def _net0(conf: PveConfig) -> dict[str, str]:
    """net0 as the config has it (a ``--net0`` given pct-style overrides lxcri's)."""
    from lxcri_core.spec.pve_config import parse_property_string

    value = conf.main.get("net0")
    return parse_property_string(value, "name") if value else {}


def _tags(conf: PveConfig) -> list[str]:
    return split_tags(conf.main.get("tags") or "")


def _free_ports(ports: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
    """``-p 80`` (host port 0): a free host port, picked now so the record names it."""
    out = []
    for p in ports:
        if p.host_port == 0:
            kind = socket.SOCK_DGRAM if p.protocol == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("", 0))
                p = dataclasses.replace(p, host_port=int(s.getsockname()[1]))
        out.append(p)
    return tuple(out)


def _follow(path: Path, tail: int | None, alive: Any) -> Iterator[bytes]:
    """The file's lines (the last ``tail``), then, while ``alive()``, what is appended."""
    pos = 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if tail is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail:]) if tail > 0 else b""
        pos = path.stat().st_size if path.exists() else 0
        if data:
            yield data
    else:
        pos = len(data)
        if data:
            yield data
    while alive is not None:
        running = alive()
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                more = f.read()
        except FileNotFoundError:
            more = b""
        if more:
            pos += len(more)
            yield more
        elif not running:
            return
        else:
            time.sleep(0.2)
