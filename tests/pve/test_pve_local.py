"""The pve-local backend against the Proxmox simulator, with real LXC containers.

The backend runs the simulator's fake ``pct``/``pvesh`` (PATH), writes its
``/etc/pve`` tree (LXCRI_PVE_ROOT) and reads its lxcpath (LXCRI_PVE_LXCPATH);
``pct start`` runs lxcri's hookscript in PVE's phases, which publishes ports
with nftables, so a published port is fetched from the host for real.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxcri_pve.backends.pve_local import PveLocalBackend
from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

from lxcri_core.backend import CreateRequest, CtRef, ExecOptions, open_backend
from lxcri_core.config import Config, load_config
from lxcri_core.errors import BackendError, ContainerNotFound
from lxcri_core.spec.options import RunOptions
from tests.pvesim.fixtures import PveSim, free_port, start_sim
from tests.support.lxcenv import make_dir, wait_for


@dataclass
class Env:
    sim: PveSim
    cfg: Config
    be: PveLocalBackend

    def conf(self, vmid: int) -> str:
        return (self.sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{vmid}.conf").read_text()

    def conf_exists(self, vmid: int) -> bool:
        return (self.sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{vmid}.conf").exists()

    def state_dir(self, vmid: int) -> Path:
        return self.cfg.root / "pve" / str(vmid)

    def run(
        self,
        name: str,
        *,
        port: int = 0,
        ip: int = 0,
        pct: dict[str, str] | None = None,
        **kw: object,
    ) -> int:
        opts = RunOptions(
            name=name,
            publish=(f"{port}:80",) if port else (),
            ip=f"{self.sim.ip(ip)}/24" if ip else None,
            gateway=self.sim.gateway if ip else None,
            **kw,  # type: ignore[arg-type]
        )
        ct = self.be.create(
            CreateRequest(image=DEMO_REF, options=opts, vmid=self.sim.vmid(), pct=pct or {})
        )
        return ct.vmid


def _setup(sim: PveSim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> Env:
    env = {
        "PATH": f"{sim.bin}:{os.environ['PATH']}",
        "PVESIM_DIR": str(sim.dir),
        "LXCRI_PVE_ROOT": str(sim.dir / "etc-pve"),
        "LXCRI_PVE_NODE": "pve1",
        "LXCRI_PVE_LXCPATH": str(sim.dir / "lxc"),
        "LXCRI_PVE_BRIDGE": sim.bridge,
        **extra,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = load_config()
    from lxcri_core.images import import_image

    layout = tmp_path / "demo-layout"
    build_demo_layout(layout)
    import_image(cfg, layout, DEMO_REF)
    be = open_backend(cfg, "pve-local")
    assert isinstance(be, PveLocalBackend)
    return Env(sim, cfg, be)


@pytest.fixture
def pve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    sim = start_sim()
    try:
        yield _setup(sim, monkeypatch, tmp_path)
    finally:
        sim.close()


def _get(addr: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{addr}:{port}/", timeout=3) as r:
        return str(r.read().decode())


def _answers(addr: str, port: int) -> bool:
    try:
        return "Hello from an lxcri container" in _get(addr, port)
    except OSError:
        return False


def _dnat_targets(vmid: int) -> str:
    out = subprocess.run(
        ["nft", "list", "table", "inet", "lxcri"], capture_output=True, text=True
    ).stdout
    return "\n".join(ln for ln in out.splitlines() if f"lxcri pve-{vmid}" in ln)


@pytest.mark.slow
def test_dir_storage_run_publish_list_exec_set_stop_destroy(pve: Env) -> None:
    port = free_port()
    vmid = pve.run("web", port=port, ip=10, volumes=("data:/data",))
    conf = pve.conf(vmid)
    # PVE 9.1's OCI encoding, the hookscript, the rootfs in PVE's subvol directory
    assert f"rootfs: local:{vmid}/subvol-{vmid}-disk-0.subvol,size=8G" in conf
    assert "unprivileged: 1" in conf and "tags: lxcri" in conf
    assert "hookscript: local:snippets/lxcri-hookscript" in conf
    assert "entrypoint: /bin/httpd -f -v -p 80 -h /www" in conf
    assert re.search(
        f"^net0: name=eth0,bridge={pve.sim.bridge},gw={pve.sim.gateway},"
        r"host-managed=1,hwaddr=BC:24:11(:[0-9A-F]{2}){3},"
        f"ip={pve.sim.ip(10)}/24,type=veth$",
        conf,
        re.M,
    ), conf
    assert "lock:" not in conf
    # the volume: allocated by pct on the same storage, owned by the CT
    mp0 = f"mp0: local:{vmid}/subvol-{vmid}-disk-1.subvol,mp=/data,backup=1,size=1G"
    assert mp0 in conf, conf
    vol = pve.sim.dir / "storage/local/images" / str(vmid) / f"subvol-{vmid}-disk-1.subvol"
    assert vol.is_dir()
    assert "#lxcri image localhost/lxcri-demo%3Alatest\n#sha256%3A" in conf
    subvol = pve.sim.dir / "storage/local/images" / str(vmid) / f"subvol-{vmid}-disk-0.subvol"
    assert (subvol / "www/index.html").stat().st_uid == 100000  # shifted for unprivileged
    state = json.loads((pve.state_dir(vmid) / "state.json").read_text())
    assert state["image"] == DEMO_REF and state["image_digest"].startswith("sha256:")
    hook = pve.sim.dir / "storage/local/snippets/lxcri-hookscript"
    assert os.access(hook, os.X_OK)

    pve.be.start(CtRef("web"))
    assert pve.sim.lxc_state(vmid) == "RUNNING"
    assert wait_for(lambda: _answers(pve.sim.gateway, port), what="published port")

    (st,) = [s for s in pve.be.list() if s.vmid == vmid]
    assert (st.name, st.status, st.lock, st.image) == ("web", "running", "", DEMO_REF)
    assert st.ipv4 == pve.sim.ip(10)
    assert [(p.host_port, p.container_port) for p in st.ports] == [(port, 80)]
    assert pve.be.status(CtRef(str(vmid))).status == "running"

    cmd = pve.be.exec_command(CtRef("web"), ["cat", "/www/index.html"], ExecOptions())
    res = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "Hello from an lxcri" in res.stdout

    pve.be.config_set(CtRef("web"), {"memory": "256"})
    assert pve.be.config_get(CtRef("web"))["memory"] == 256
    assert "memory: 256" in pve.conf(vmid)

    logs = b"".join(pve.be.logs(CtRef("web")))
    assert b"response:200" in logs  # httpd -v logged the request on its console

    pve.be.stop(CtRef("web"), timeout=5)
    assert pve.sim.lxc_state(vmid) == "STOPPED"
    assert _dnat_targets(vmid) == ""  # post-stop unpublished
    assert not _answers(pve.sim.gateway, port)
    assert pve.be.status(CtRef("web")).status == "exited"

    pve.be.remove(CtRef("web"))
    assert not pve.conf_exists(vmid)
    assert not subvol.exists() and not vol.exists()
    assert not pve.state_dir(vmid).exists()
    with pytest.raises(ContainerNotFound):
        pve.be.status(CtRef("web"))


@pytest.mark.slow
def test_zfspool_storage_clone_and_destroy(
    zfs_dataset: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # pytest's tmp dir (where the pool is mounted) is 0700: the unprivileged CT's
    # root (uid 100000) could not reach its rootfs; PVE's pools are below / instead.
    mnt = make_dir() / "zfs"
    subprocess.run(["zfs", "set", f"mountpoint={mnt}", zfs_dataset], check=True)
    sim = start_sim(zfs_pool=zfs_dataset)
    try:
        pve = _setup(sim, monkeypatch, tmp_path, LXCRI_PVE_STORAGE="local-zfs")
        port = free_port()
        vmid = pve.run("zweb", port=port, ip=11)
        ds = f"{zfs_dataset}/subvol-{vmid}-disk-0"
        assert f"rootfs: local-zfs:subvol-{vmid}-disk-0,size=8G" in pve.conf(vmid)
        origin = subprocess.run(
            ["zfs", "get", "-H", "-o", "value", "origin", ds], capture_output=True, text=True
        ).stdout.strip()
        assert origin.startswith(f"{zfs_dataset}/lxcri/layers/")  # a clone of the layer chain
        quota = subprocess.run(
            ["zfs", "get", "-H", "-o", "value", "refquota", ds], capture_output=True, text=True
        ).stdout.strip()
        assert quota == "8G"
        pve.be.start(CtRef(str(vmid)))
        assert wait_for(lambda: _answers(sim.gateway, port), what="published port")
        pve.be.remove(CtRef("zweb"), force=True)
        res = subprocess.run(["zfs", "list", ds], capture_output=True, text=True)
        assert res.returncode != 0
        assert not pve.conf_exists(vmid)
        refs = json.loads((pve.cfg.root / "storage/zfs/refs.json").read_text())
        assert str(vmid) not in refs.get("containers", {})  # lxcri forgot the clone too
    finally:
        sim.close()
        subprocess.run(["zfs", "inherit", "mountpoint", zfs_dataset], capture_output=True)
        shutil.rmtree(mnt.parent, ignore_errors=True)


@contextlib.contextmanager
def dhcp_server(sim: PveSim) -> Iterator[None]:
    """busybox udhcpd on the simulator's bridge, leasing .100-.120."""
    leases = sim.dir / "udhcpd.leases"
    leases.touch()
    conf = sim.dir / "udhcpd.conf"
    conf.write_text(
        f"start {sim.ip(100)}\nend {sim.ip(120)}\ninterface {sim.bridge}\n"
        f"lease_file {leases}\npidfile {sim.dir / 'udhcpd.pid'}\n"
        f"opt router {sim.gateway}\nopt subnet 255.255.255.0\n"
    )
    server = subprocess.Popen(
        ["busybox", "udhcpd", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        server.terminate()
        server.wait(10)


def _dnat_addrs(vmid: int) -> set[str]:
    return set(re.findall(r"dnat ip to ([0-9.]+):", _dnat_targets(vmid)))


@pytest.mark.slow
def test_host_managed_dhcp_publishes_to_the_lease_and_reboot_republishes(pve: Env) -> None:
    port = free_port()
    with dhcp_server(pve.sim):
        vmid = pve.run("hweb", port=port, stop_timeout=1)
        assert "ip=dhcp" in pve.conf(vmid) and "host-managed=1" in pve.conf(vmid)
        pve.be.start(CtRef("hweb"))  # PVE 9.1 leases the address before post-start
        addr = pve.be.status(CtRef("hweb")).ipv4
        assert int(addr.rsplit(".", 1)[1]) in range(100, 121)
        assert _dnat_addrs(vmid) == {addr}
        assert wait_for(lambda: _answers(pve.sim.gateway, port), what="port to the leased address")
        pve.be.reboot(CtRef("hweb"))
        hooks = (pve.state_dir(vmid) / "hooks.log").read_text()
        assert "post-stop: ports unpublished (target " in hooks
        new = pve.be.status(CtRef("hweb")).ipv4
        assert _dnat_addrs(vmid) == {new}  # to this start's address only
        pve.be.remove(CtRef("hweb"), force=True)
    assert _dnat_targets(vmid) == ""


@pytest.mark.slow
def test_dhcp_by_the_ct_itself_is_learned_after_start_and_reboot_leaves_nothing(
    pve: Env,
) -> None:
    port = free_port()
    # not host-managed: the CT's own DHCP client sets the address, some time after start
    net0 = f"name=eth0,bridge={pve.sim.bridge},ip=dhcp"
    vmid = pve.run("dweb", port=port, cap_add=("NET_ADMIN",), stop_timeout=1, pct={"net0": net0})
    pve.be.start(CtRef("dweb"))
    assert _dnat_targets(vmid) == ""  # no address yet: nothing published
    addr = pve.sim.ip(20)
    # what a DHCP client in the CT would do
    cmd = pve.be.exec_command(
        CtRef("dweb"), ["busybox", "ip", "addr", "add", f"{addr}/24", "dev", "eth0"], ExecOptions()
    )
    res = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert wait_for(lambda: _answers(pve.sim.gateway, port), what="port published via DHCP")
    assert pve.be.status(CtRef("dweb")).ipv4 == addr
    pve.be.reboot(CtRef("dweb"))
    assert pve.sim.lxc_state(vmid) == "RUNNING"
    assert addr not in _dnat_targets(vmid)  # nothing to the old address
    pve.be.remove(CtRef("dweb"), force=True)


def test_a_hostile_ct_address_is_not_a_dnat_target(pve: Env) -> None:
    """A CT claiming an address outside its bridge's subnet gets no DNAT to it."""
    port = free_port()
    net0 = f"name=eth0,bridge={pve.sim.bridge},ip=dhcp"
    vmid = pve.run("evil", port=port, cap_add=("NET_ADMIN",), pct={"net0": net0})
    pve.be.start(CtRef("evil"))
    cmd = pve.be.exec_command(
        CtRef("evil"),
        ["busybox", "ip", "addr", "add", "10.254.254.1/24", "dev", "eth0"],
        ExecOptions(),
    )
    res = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    log = pve.state_dir(vmid) / "hooks.log"
    assert wait_for(lambda: log.exists() and "outside the subnets" in log.read_text())
    assert _dnat_targets(vmid) == ""
    pve.be.remove(CtRef("evil"), force=True)


def test_errors_are_one_clear_line(pve: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    vmid = pve.run("one")
    # a VMID that exists
    with pytest.raises(BackendError, match=f"^CT {vmid} already exists on node pve1$"):
        pve.be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="two"), vmid=vmid))
    # a name that exists
    with pytest.raises(BackendError, match="named one exists already"):
        pve.run("one")
    # unknown storage
    be = PveLocalBackend(pve.cfg.with_overrides(pve_storage="nope"))
    with pytest.raises(BackendError, match=r"^storage 'nope' is not in .*storage\.cfg; use one of"):
        be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="three")))
    # the config lock held by another process beyond the timeout
    other = pve.sim.vmid()
    lock = Path("/run/lock/lxc") / f"pve-config-{other}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        ["flock", str(lock), "sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _locked(lock), what="flock holder")
        be = PveLocalBackend(pve.cfg.with_overrides(lock_timeout=1.0))
        with pytest.raises(BackendError, match=f"^CT {other}: its config lock .* is held by"):
            be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="four"), vmid=other))
    finally:
        holder.kill()
        holder.wait()
    assert not pve.conf_exists(other)
    # pct-style properties go through pct's schema check; a newline cannot add a raw key
    bad = {"memory": "128\nlxc.hook.pre-start: /bin/false"}
    with pytest.raises(
        BackendError,
        match=r"^creating CT \d+: 400 Parameter verification failed\.; memory: type check",
    ):
        pve.be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="five"), pct=bad))
    with pytest.raises(BackendError, match=r"^--lxc\.init\.cmd is lxcri's to set on pve-local$"):
        pve.be.create(
            CreateRequest(image=DEMO_REF, options=RunOptions(name="six"), pct={"lxc.init.cmd": "x"})
        )
    # nothing of the failed creates is left: only CT "one"
    assert [s.name for s in pve.be.list()] == ["one"]
    pve.be.remove(CtRef("one"))


def _locked(path: Path) -> bool:
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.slow
def test_hook_failures_reach_the_task_log_and_a_bad_record_aborts_the_start(pve: Env) -> None:
    port = free_port()
    a = pve.run("first", port=port, ip=30)
    b = pve.run("second", port=port, ip=31)
    pve.be.start(CtRef("first"))
    pve.be.start(CtRef("second"))  # PVE: a failing post-start is a warning, the CT runs
    assert pve.sim.lxc_state(b) == "RUNNING"
    hooks = (pve.state_dir(b) / "hooks.log").read_text()
    assert f"CT {b} post-start: failed: host port {port}/tcp is already published" in hooks
    tasks = "".join(p.read_text() for p in (pve.sim.dir / "tasks").glob("UPID:*:vzstart:*"))
    assert f"lxcri hookscript: CT {b} post-start: failed: host port {port}" in tasks
    assert wait_for(lambda: _answers(pve.sim.gateway, port))  # still the first one's
    pve.be.stop(CtRef("second"), timeout=0)
    # an unreadable record: pre-start fails, so PVE does not start the CT
    (pve.state_dir(b) / "state.json").write_text("{broken")
    with pytest.raises(
        BackendError, match=f"^starting CT {b}: hookscript error for {b} on pre-start"
    ):
        pve.be.start(CtRef("second"))
    assert pve.sim.lxc_state(b) == "STOPPED"
    for vmid in (a, b):
        pve.be.remove(CtRef(str(vmid)), force=True)


def test_vmid_from_nextid_and_the_host_address_is_refused(pve: Env) -> None:
    from lxcri_pve.backends.pve_hookscript import acceptable
    from lxcri_pve.backends.pve_state import load_state

    ct = pve.be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="auto")))
    assert ct.vmid >= pve.sim.first_vmid and pve.conf_exists(ct.vmid)
    assert ct.name == "auto" and ct.backend == "pve-local"
    st = load_state(pve.cfg.root, ct.vmid)
    assert st is not None and st.bridge == pve.sim.bridge
    gw = ipaddress.IPv4Interface(f"{pve.sim.gateway}/24")
    assert "one of the host's own addresses" in str(acceptable(st, gw))
    assert acceptable(st, ipaddress.IPv4Interface(f"{pve.sim.ip(40)}/24")) is None
    pve.be.remove(CtRef("auto"))
    assert not pve.conf_exists(ct.vmid)


def test_pct_properties_at_create(pve: Env) -> None:
    ct = pve.be.create(
        CreateRequest(
            image=DEMO_REF,
            options=RunOptions(name="props"),
            vmid=pve.sim.vmid(),
            pct={"memory": "128", "cores": "1", "tags": "web;prod", "net0": pve.sim.net0(50)},
        )
    )
    conf = pve.conf(ct.vmid)
    assert "memory: 128" in conf and "cores: 1" in conf and "tags: lxcri;web;prod" in conf
    assert f"ip={pve.sim.ip(50)}/24" in conf
    st = json.loads((pve.state_dir(ct.vmid) / "state.json").read_text())
    assert st["ipv4"] == f"{pve.sim.ip(50)}/24"  # the record follows --net0
    pve.be.remove(CtRef("props"))


def test_hookscript_install_is_idempotent_and_keeps_a_foreign_file(tmp_path: Path) -> None:
    from lxcri_pve.backends.pve_hookscript import install

    path = tmp_path / "snippets" / "lxcri-hookscript"
    install(path, tmp_path / "root")
    first = path.stat()
    install(path, tmp_path / "root")
    assert path.stat().st_ino == first.st_ino  # unchanged: not rewritten
    assert os.access(path, os.X_OK) and "/root'" in path.read_text()
    other = tmp_path / "snippets" / "admin-script"
    other.write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(BackendError, match="is not lxcri's hookscript"):
        install(other, tmp_path / "root")
    assert other.read_text() == "#!/bin/sh\necho mine\n"


@pytest.mark.slow
def test_restart_policy_restarts_an_exited_ct_but_not_a_stopped_one(pve: Env) -> None:
    vmid = pve.run(
        "flappy",
        ip=60,
        entrypoint="/bin/sh",
        args=("-c", "echo boot; sleep 2"),
        restart="always",
        stop_timeout=1,
    )
    pve.be.start(CtRef("flappy"))
    clog = pve.state_dir(vmid) / "console.log"
    wait_for(lambda: pve.be.status(CtRef("flappy")).restarts >= 1, timeout=30, what="a restart")
    wait_for(lambda: pve.sim.lxc_state(vmid) == "RUNNING", what="running again")
    wait_for(lambda: clog.read_bytes().count(b"boot") >= 2, what="the second boot's output")
    pve.be.stop(CtRef("flappy"), timeout=0)  # pre-stop marks it: no restart
    before = pve.be.status(CtRef("flappy")).restarts
    import time

    time.sleep(4)
    st = pve.be.status(CtRef("flappy"))
    assert (st.status, st.restarts) == ("exited", before)
    pve.be.remove(CtRef("flappy"))


@pytest.mark.slow
def test_healthcheck_runs_through_pct_exec(pve: Env) -> None:
    pve.run(
        "checked",
        ip=61,
        health_cmd="[ -f /tmp/ok ]",
        health_interval="1s",
        health_retries="1",
        stop_timeout=1,
    )
    pve.be.start(CtRef("checked"))
    wait_for(lambda: pve.be.status(CtRef("checked")).health == "unhealthy", what="unhealthy")
    cmd = pve.be.exec_command(CtRef("checked"), ["sh", "-c", "echo > /tmp/ok"], ExecOptions())
    subprocess.run(cmd.argv, env=cmd.env, check=True, capture_output=True, timeout=30)
    wait_for(lambda: pve.be.status(CtRef("checked")).health == "healthy", what="healthy")
    pve.be.remove(CtRef("checked"), force=True)


def test_lock_column_foreign_cts_and_bad_names(pve: Env) -> None:
    from lxcri_core.errors import LxcriError

    vmid = pve.run("locked")
    assert pve.sim.pct("set", str(vmid), "--lock", "backup").returncode == 0
    (st,) = pve.be.list()
    assert (st.vmid, st.lock, st.status) == (vmid, "backup", "created")
    with pytest.raises(BackendError, match="CT is locked"):
        pve.be.remove(CtRef("locked"))
    assert pve.sim.pct("set", str(vmid), "--delete", "lock").returncode == 0
    # a CT lxcri did not make is not lxcri's to touch, nor listed
    foreign = pve.sim.vmid()
    conf_dir = pve.sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc"
    (conf_dir / f"{foreign}.conf").write_text("hostname: other\nostype: debian\n")
    with pytest.raises(ContainerNotFound, match=f"^CT {foreign} is not an lxcri container"):
        pve.be.remove(CtRef(str(foreign)))
    assert [s.vmid for s in pve.be.list()] == [vmid]
    # a name is a hostname (and a lock file name): no path tricks
    with pytest.raises(LxcriError, match="--name"):
        pve.be.create(CreateRequest(image=DEMO_REF, options=RunOptions(name="../evil")))
    assert not (pve.cfg.root / "pve" / "evil").exists()
    pve.be.remove(CtRef("locked"))


@pytest.mark.slow
def test_run_foreground_streams_the_console(pve: Env, capfd: pytest.CaptureFixture[str]) -> None:
    pve.run("fg", ip=70, entrypoint="/bin/sh", args=("-c", "echo fg-hello; sleep 1"))
    assert pve.be.run_foreground(CtRef("fg")) == 0
    assert "fg-hello" in capfd.readouterr().out
    assert pve.be.status(CtRef("fg")).status == "exited"
    pve.be.remove(CtRef("fg"))


def test_list_is_one_read_for_all_cts(pve: Env, tmp_path: Path) -> None:
    """Every config read from the file system, one lxc-ls for all states: no process per CT."""
    vmids = [pve.run(f"bulk{i}") for i in range(4)]
    shims = tmp_path / "shims"
    shims.mkdir()
    calls = tmp_path / "calls"
    for tool in ("lxc-ls", "lxc-info", "pct", "pvesh"):
        real = shutil.which(tool)
        assert real is not None
        shim = shims / tool
        shim.write_text(f'#!/bin/sh\necho {tool} >> {calls}\nexec {real} "$@"\n')
        shim.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{shims}:{old}"
    try:
        listed = pve.be.list()
    finally:
        os.environ["PATH"] = old
    assert [s.vmid for s in listed] == vmids
    assert calls.read_text().split() == ["lxc-ls"]
    for vmid in vmids:
        pve.be.remove(CtRef(str(vmid)))


def test_pve_lxcpath_setting(tmp_path: Path) -> None:
    from lxcri_core.config import parse_config

    assert load_config(env={"LXCRI_PVE_LXCPATH": "/x/lxc"}).pve_lxcpath == Path("/x/lxc")
    assert parse_config({"pve_lxcpath": "/y"}).pve_lxcpath == Path("/y")
    assert load_config(env={}).pve_lxcpath == Path("/var/lib/lxc")
