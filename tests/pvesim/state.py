"""The simulator's state directory: a fake /etc/pve, storages, tasks and the config lock.

DIR/etc-pve            the PVE root (what LXCRI_PVE_ROOT points at)
  nodes/NODE/lxc/VMID.conf, lxc -> nodes/NODE/lxc, local -> nodes/NODE,
  storage.cfg, user.cfg, datacenter.cfg, priv/token.cfg, priv/shadow.cfg
DIR/storage/local      the ``dir: local`` storage (template/cache, snippets, images)
DIR/lxc                the lxcpath containers start from (DIR/lxc/VMID/config)
DIR/tasks              UPID task logs and final states
The config lock is PVE's: flock on LOCKDIR/pve-config-VMID.lock with LOCKDIR
/run/lock/lxc unless PVESIM_LOCK_DIR says otherwise.

Only the standard library is used: the fake pct/pvesh and the LXC hook run
under Debian's /usr/bin/python3 without the venv.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.pvesim import pctconf
from tests.pvesim.errors import PveError, param_error

__all__ = ["PveError", "Sim", "TaskLog", "param_error", "run_task", "task_log", "task_status"]

NODE = "pve1"
PVE_VERSION = {"version": "9.1.1", "release": "9.1", "repoid": "42ab1c4d"}
DEFAULT_LOCK_DIR = Path("/run/lock/lxc")


@dataclass
class Storage:
    id: str
    type: str  # dir | zfspool
    content: list[str]
    path: Path | None = None
    pool: str | None = None


class Sim:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.etc_pve = self.root / "etc-pve"
        self.node = NODE
        self.lxcpath = self.root / "lxc"
        self.tasks = self.root / "tasks"
        self.lock_dir = Path(os.environ.get("PVESIM_LOCK_DIR", str(DEFAULT_LOCK_DIR)))

    # -- layout --------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.etc_pve / "nodes" / self.node / "lxc"

    def conf_path(self, vmid: int) -> Path:
        return self.conf_dir / f"{vmid}.conf"

    def init(self, first_vmid: int = 100, zfs_pool: str | None = None) -> None:
        """Create the tree (idempotent); ``first_vmid`` is datacenter.cfg's next-id lower bound."""
        for d in (
            self.conf_dir,
            self.etc_pve / "priv",
            self.lxcpath,
            self.tasks,
            self.root / "tmp",
        ):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.root, self.lxcpath):
            os.chmod(d, 0o755)
        for link, target in (("lxc", f"nodes/{self.node}/lxc"), ("local", f"nodes/{self.node}")):
            p = self.etc_pve / link
            if not p.is_symlink():
                p.symlink_to(target)
        local = self.root / "storage" / "local"
        for sub in ("template/cache", "template/iso", "snippets", "images"):
            (local / sub).mkdir(parents=True, exist_ok=True)
        for p in [self.root / "storage", local, local / "images"]:
            os.chmod(p, 0o755)
        cfg = self.etc_pve / "storage.cfg"
        if not cfg.exists():
            text = (
                f"dir: local\n\tpath {local}\n\tcontent vztmpl,snippets,rootdir,images\n"
                "\tshared 0\n"
            )
            if zfs_pool:
                text += (
                    f"\nzfspool: local-zfs\n\tpool {zfs_pool}\n\tcontent rootdir,images\n"
                    "\tsparse 1\n"
                )
            cfg.write_text(text)
        members = {
            "nodename": self.node,
            "version": 1,
            "nodelist": {self.node: {"id": 1, "online": 1, "ip": "127.0.0.1"}},
        }
        (self.etc_pve / ".members").write_text(json.dumps(members, indent=1) + "\n")
        self.update_vmlist()
        dc = self.etc_pve / "datacenter.cfg"
        if not dc.exists():
            dc.write_text(f"next-id: lower={first_vmid}\n")
        if not (self.etc_pve / "user.cfg").exists():
            (self.etc_pve / "user.cfg").write_text("user:root@pam:1:0:::root@localhost:::\n")
        shadow = self.etc_pve / "priv" / "shadow.cfg"
        if not shadow.exists():
            shadow.write_text("root@pam:" + secrets.token_hex(12) + "\n")
            os.chmod(shadow, 0o600)

    def add_token(self, user: str, tokenid: str) -> str:
        """Add an API token (privsep 0) and return ``USER@REALM!TOKENID=SECRET``."""
        secret = str(_uuid())
        usercfg = self.etc_pve / "user.cfg"
        text = usercfg.read_text() if usercfg.exists() else ""
        if f"user:{user}:" not in text:
            text += f"user:{user}:1:0:::::\n"
        text += f"token:{user}!{tokenid}::0:\n"
        usercfg.write_text(text)
        tokens = self.etc_pve / "priv" / "token.cfg"
        with open(tokens, "a") as f:
            f.write(f"{user}!{tokenid} {secret}\n")
        os.chmod(tokens, 0o600)
        return f"{user}!{tokenid}={secret}"

    def tokens(self) -> dict[str, str]:
        p = self.etc_pve / "priv" / "token.cfg"
        out = {}
        for line in p.read_text().splitlines() if p.exists() else []:
            if " " in line:
                k, v = line.split(" ", 1)
                out[k] = v.strip()
        return out

    def passwords(self) -> dict[str, str]:
        p = self.etc_pve / "priv" / "shadow.cfg"
        out = {}
        for line in p.read_text().splitlines() if p.exists() else []:
            user, _, pw = line.rpartition(":")
            if user:
                out[user] = pw
        return out

    def first_vmid(self) -> int:
        dc = self.etc_pve / "datacenter.cfg"
        m = re.search(r"lower=(\d+)", dc.read_text()) if dc.exists() else None
        return int(m.group(1)) if m else 100

    # -- storage -------------------------------------------------------------
    def storages(self) -> dict[str, Storage]:
        out: dict[str, Storage] = {}
        cur: Storage | None = None
        for line in (self.etc_pve / "storage.cfg").read_text().splitlines():
            m = re.match(r"^(\w+):\s*(\S+)\s*$", line)
            if m:
                cur = Storage(m.group(2), m.group(1), [])
                out[cur.id] = cur
                continue
            m = re.match(r"^\s+(\S+)\s+(.*)$", line)
            if m and cur is not None:
                k, v = m.group(1), m.group(2).strip()
                if k == "path":
                    cur.path = Path(v)
                elif k == "content":
                    cur.content = v.split(",")
                elif k == "pool":
                    cur.pool = v
        return out

    def storage(self, sid: str) -> Storage:
        st = self.storages().get(sid)
        if st is None:
            raise PveError(f"storage '{sid}' does not exist")
        return st

    def volume_path(self, volid: str) -> tuple[Path, str]:
        """(path, content type) of a volume id, as PVE::Storage::path."""
        sid, _, name = volid.partition(":")
        st = self.storage(sid)
        if st.type == "zfspool":
            assert st.pool is not None
            if not re.fullmatch(r"(?:base|subvol)-\d+-disk-\d+", name):
                raise PveError(f"unable to parse zfs volume name '{name}'")
            return zfs_mountpoint(f"{st.pool}/{name}"), "images"
        assert st.path is not None
        m = re.match(r"^(vztmpl|iso|snippets|import)/([^/]+)$", name)
        if m and m.group(2) not in (".", ".."):
            sub = {"vztmpl": "template/cache", "iso": "template/iso", "snippets": "snippets"}
            return st.path / sub.get(m.group(1), m.group(1)) / m.group(2), m.group(1)
        # PVE's image names only: never '..' or another directory (parse_name_dir).
        m = re.match(
            r"^(\d+)/((?:base|vm|subvol)-\d+-disk-\d+(?:\.(?:raw|qcow2|vmdk|subvol))?)$", name
        )
        if m:
            return st.path / "images" / m.group(1) / m.group(2), "images"
        raise PveError(f"unable to parse volume name '{name}'")

    # -- config lock (PVE::LXC::Config->lock_config) -------------------------
    @contextlib.contextmanager
    def lock(self, vmid: int, timeout: float | None = None) -> Iterator[None]:
        # PVE waits 10 s for the lock; PVESIM_LOCK_TIMEOUT shortens that for tests.
        if timeout is None:
            timeout = float(os.environ.get("PVESIM_LOCK_TIMEOUT", "10"))
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / f"pve-config-{vmid}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise PveError(f"can't lock file '{path}' - got timeout") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    # -- configs -------------------------------------------------------------
    def vmids(self) -> list[int]:
        out = []
        for p in self.conf_dir.glob("*.conf"):
            if p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def exists(self, vmid: int) -> bool:
        return self.conf_path(vmid).exists()

    def load(self, vmid: int) -> pctconf.PctConf:
        p = self.conf_path(vmid)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise PveError(
                f"Configuration file 'nodes/{self.node}/lxc/{vmid}.conf' does not exist"
            ) from None
        return pctconf.parse(text)

    def raw(self, vmid: int) -> str:
        return self.conf_path(vmid).read_text()

    def write(self, vmid: int, conf: pctconf.PctConf) -> None:
        # pmxcfs replaces files atomically; do the same so readers never see half a file.
        p = self.conf_path(vmid)
        tmp = p.with_name(f".{p.name}.tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(pctconf.render(conf))
        os.replace(tmp, p)
        self.update_vmlist()

    def remove_conf(self, vmid: int) -> None:
        self.conf_path(vmid).unlink(missing_ok=True)
        self.update_vmlist()

    def update_vmlist(self) -> None:
        """pmxcfs's /etc/pve/.vmlist: every guest of the cluster, a cheap bulk listing."""
        version = int(time.time() * 1000)
        ids = {str(v): {"node": self.node, "type": "lxc", "version": version} for v in self.vmids()}
        data = json.dumps({"version": version, "ids": ids}, indent=1)
        tmp = self.etc_pve / f".vmlist.tmp{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(data + "\n")
        os.replace(tmp, self.etc_pve / ".vmlist")

    def nextid(self) -> int:
        used = set(self.vmids())
        vmid = self.first_vmid()
        while vmid in used or (self.lxcpath / str(vmid)).exists():
            vmid += 1
        return vmid


def zfs_mountpoint(dataset: str) -> Path:
    out = subprocess.run(
        ["zfs", "get", "-H", "-o", "value", "mountpoint", dataset],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise PveError(f"zfs error: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


# -- tasks (PVE::RPCEnvironment::fork_worker, PVE::Tools upid_encode) --------

_upid_lock = threading.Lock()


def _pstart() -> int:
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def new_upid(sim: Sim, typ: str, ident: str, user: str) -> str:
    with _upid_lock:
        start = int(time.time())
        while True:
            upid = (
                f"UPID:{sim.node}:{os.getpid():08X}:{_pstart():08X}:{start:08X}:"
                f"{typ}:{ident}:{user}:"
            )
            if not (sim.tasks / upid).exists():
                (sim.tasks / upid).write_text("")
                return upid
            start += 1


UPID_RE = re.compile(
    r"^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$"
)


def parse_upid(upid: str) -> dict[str, object]:
    m = UPID_RE.match(upid)
    if not m:
        raise param_error("upid", "unable to parse worker upid")
    node, pid, pstart, start, typ, ident, user = m.groups()
    return {
        "upid": upid,
        "node": node,
        "pid": int(pid, 16),
        "pstart": int(pstart, 16),
        "starttime": int(start, 16),
        "type": typ,
        "id": ident,
        "user": user,
    }


class TaskLog:
    """Appends lines to a task's log; ``echo`` prints them too (pct/pvesh run tasks in front)."""

    def __init__(self, sim: Sim, upid: str, echo: bool) -> None:
        self.path = sim.tasks / upid
        self.echo = echo

    def __call__(self, text: str) -> None:
        lines = text.rstrip("\n").split("\n") if text else []
        with open(self.path, "a") as f:
            for line in lines:
                f.write(line + "\n")
        if self.echo:
            # In the foreground (pct, pvesh) the final TASK line is the exit status instead.
            for line in lines:
                if line != "TASK OK" and not line.startswith("TASK ERROR: "):
                    print(line, flush=True)


TaskFn = Callable[[TaskLog], None]


def run_task(
    sim: Sim, typ: str, ident: str, user: str, fn: TaskFn, background: bool, echo: bool = False
) -> tuple[str, str]:
    """Run ``fn`` as a worker task; (UPID, exitstatus) — exitstatus is '' while it runs."""
    upid = new_upid(sim, typ, ident, user)
    log = TaskLog(sim, upid, echo)

    def worker() -> str:
        try:
            fn(log)
            status = "OK"
        except Exception as e:  # every failure ends the task with its message, as PVE's worker
            msg = str(e).strip() or e.__class__.__name__
            log(f"TASK ERROR: {msg}")
            status = msg.split("\n")[0]
        else:
            log("TASK OK")
        # written aside and renamed: a status poll must never read a half-written file
        done = sim.tasks / (upid + ".status")
        tmp = done.with_name(done.name + ".tmp")
        tmp.write_text(json.dumps({"exitstatus": status, "endtime": int(time.time())}))
        tmp.rename(done)
        return status

    if background:
        threading.Thread(target=worker, name=upid, daemon=True).start()
        return upid, ""
    return upid, worker()


def task_status(sim: Sim, upid: str) -> dict[str, object]:
    info = parse_upid(upid)
    if not (sim.tasks / upid).exists():
        raise PveError(f"no such task '{upid}'", 500)
    st = sim.tasks / (upid + ".status")
    if st.exists():
        data = json.loads(st.read_text())
        info.update(status="stopped", exitstatus=data["exitstatus"])
    else:
        info.update(status="running")
    return info


def task_log(sim: Sim, upid: str, start: int = 0, limit: int = 50) -> list[dict[str, object]]:
    parse_upid(upid)
    try:
        lines = (sim.tasks / upid).read_text().splitlines()
    except FileNotFoundError:
        raise PveError(f"no such task '{upid}'") from None
    sel = lines[start : start + limit] if limit else lines[start:]
    if not sel and start == 0:
        return [{"n": 1, "t": "no content"}]
    return [{"n": start + i + 1, "t": t} for i, t in enumerate(sel)]


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
