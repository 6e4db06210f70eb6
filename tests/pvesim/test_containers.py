"""CTs started for real by the simulator: LXC runs them, the hookscript sees PVE's phases."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.pvesim.fixtures import NODE, PveSim, pvesim
from tests.support.images import Entry, Layer, busybox_image, make_tar
from tests.support.lxcenv import wait_for

__all__ = ["pvesim"]
pytestmark = pytest.mark.slow

WEB = busybox_image(
    Entrypoint=["/bin/httpd", "-f", "-p", "80", "-h", "/www"], Cmd=[], Env=["PATH=/bin"]
)


def marker_hook(pvesim: PveSim, fail_phase: str = "") -> tuple[str, Path]:
    """A hookscript appending ``VMID PHASE`` to a file; exits 1 in ``fail_phase``."""
    markers = pvesim.dir / "markers"
    script = (
        "#!/bin/sh\n"
        f'echo "$1 $2" >> {markers}\n'
        f'echo "$2 ${{LXCRI_ROOT:-unset}} ${{LXC_TARGET:-none}}" >> {markers}.env\n'
        'echo "hook says $2"\n'
        f'[ "$2" = "{fail_phase}" ] && {{ echo "refusing $2" >&2; exit 1; }}\n'
        "exit 0\n"
    )
    return pvesim.add_snippet("marker-hook", script), markers


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return str(r.read().decode())


def test_oci_ct_runs_with_hookscript_phases_through_the_api(pvesim: PveSim) -> None:
    api = pvesim.api()
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("web.tar", WEB)
    upid = api.nodes(NODE).lxc.post(
        vmid=vmid, ostemplate=tmpl, hostname="web", memory=64, net0=pvesim.net0(10)
    )
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    hook, markers = marker_hook(pvesim)
    # A token may not set the hookscript: the local root path (pct) does.
    assert pvesim.pct("set", str(vmid), "--hookscript", hook).returncode == 0
    ct = api.nodes(NODE).lxc(vmid)
    upid = ct.status.start.post()
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert pvesim.lxc_state(vmid) == "RUNNING"
    assert markers.read_text() == f"{vmid} pre-start\n{vmid} post-start\n"
    log = pvesim.task_log(upid)
    assert log == ["hook says pre-start", "hook says post-start", "TASK OK"]
    assert "hello from lxcri" in wait_for(
        lambda: _try_get(f"http://{pvesim.ip(10)}/index.html"), what="the CT's httpd"
    )
    assert ct.status.current.get()["status"] == "running"
    res = [r for r in api.cluster.resources.get(type="vm") if r["vmid"] == vmid]
    assert res[0]["status"] == "running" and res[0]["name"] == "web"
    cfg = (pvesim.dir / "lxc" / str(vmid) / "config").read_text()
    assert f"lxc.net.0.veth.pair = veth{vmid}i0\n" in cfg
    assert "lxc.idmap = u 0 100000 65536\n" in cfg
    assert "lxc.cgroup.memory.limit_in_bytes = 67108864\n" in cfg
    # httpd as PID 1 ignores SIGTERM: a plain shutdown fails, forceStop kills it.
    upid = ct.status.shutdown.post(timeout=1)
    assert pvesim.wait_task(upid)["exitstatus"] == "container did not stop"
    assert pvesim.lxc_state(vmid) == "RUNNING"
    upid = ct.status.shutdown.post(timeout=1, forceStop=1)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert pvesim.lxc_state(vmid) == "STOPPED"
    assert markers.read_text().splitlines()[2:] == [
        f"{vmid} pre-stop",
        f"{vmid} pre-stop",
        f"{vmid} post-stop",
    ]
    assert pvesim.task_log(upid) == [
        "hook says pre-stop",
        "forcing stop",
        "hook says post-stop",
        "TASK OK",
    ]
    upid = ct.delete(purge=1, **{"destroy-unreferenced-disks": 1})
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert not (pvesim.dir / "storage" / "local" / "images" / str(vmid)).exists()
    assert not (pvesim.dir / "lxc" / str(vmid)).exists()


def _try_get(url: str) -> str:
    try:
        return _get(url)
    except OSError:
        return ""


def test_failing_pre_start_hookscript_fails_the_start(pvesim: PveSim) -> None:
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("web.tar", WEB)
    hook, markers = marker_hook(pvesim, fail_phase="pre-start")
    res = pvesim.pct("create", str(vmid), tmpl, "--hookscript", hook, "--memory", "64")
    assert res.returncode == 0, res.stderr
    res = pvesim.pct("start", str(vmid))
    assert res.returncode == 255
    script = pvesim.dir / "storage" / "local" / "snippets" / "marker-hook"
    assert res.stderr == (
        f"hookscript error for {vmid} on pre-start: command '{script} {vmid} pre-start'"
        " failed: exit code 1\n"
    )
    assert "refusing pre-start" in res.stdout  # the script's output, as in the task log
    assert pvesim.lxc_state(vmid) != "RUNNING"
    upid = pvesim.api().nodes(NODE).lxc(vmid).status.start.post()
    st = pvesim.wait_task(upid)
    assert st["exitstatus"].startswith(f"hookscript error for {vmid} on pre-start")
    assert "refusing pre-start" in pvesim.task_log(upid)
    assert markers.read_text() == f"{vmid} pre-start\n{vmid} pre-start\n"


def test_entrypoint_quoting_env_and_unprivileged_ids(pvesim: PveSim) -> None:
    img = busybox_image(
        Entrypoint=["/bin/sh", "-c"],
        Cmd=['echo "$GREETING" "$(id -u)" > /tmp/out; exec sleep 300'],
        Env=["PATH=/bin", 'GREETING=hello  "quoted" world'],
        WorkingDir="/www",
    )
    img.layers.append(Layer(make_tar([Entry("www/secret", data=b"x", mode=0o4755, uid=33)])))
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("sh.tar", img)
    assert pvesim.pct("create", str(vmid), tmpl, "--memory", "64").returncode == 0
    subvol = (
        pvesim.dir / "storage" / "local" / "images" / str(vmid) / f"subvol-{vmid}-disk-0.subvol"
    )
    st = os.lstat(subvol / "www" / "secret")
    assert (st.st_uid, st.st_mode & 0o7777) == (100033, 0o4755)  # shifted, setuid kept
    res = pvesim.pct("start", str(vmid))
    assert res.returncode == 0, res.stderr
    out = wait_for(lambda: _pct_cat(pvesim, vmid, "/tmp/out"), what="the entrypoint's output")
    assert out == 'hello  "quoted" world 0\n'
    pid = int(pvesim.api().nodes(NODE).lxc(vmid).status.current.get()["pid"])
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert pvesim.pct("exec", str(vmid), "--", "pwd").stdout == "/\n"  # pct exec: no init cwd
    # PVE 9's pct exec clears the host environment unless asked to keep it.
    assert "PVESIM_DIR" not in pvesim.pct("exec", str(vmid), "--", "env").stdout
    kept = pvesim.pct("exec", str(vmid), "--keep-env", "1", "--", "env").stdout
    assert f"PVESIM_DIR={pvesim.dir}" in kept
    assert pvesim.pct("stop", str(vmid)).returncode == 0
    assert pvesim.lxc_state(vmid) == "STOPPED"
    res = pvesim.pct("exec", str(vmid), "--", "true")
    assert (res.returncode, res.stderr) == (255, f"container '{vmid}' not running!\n")


def _pct_cat(pvesim: PveSim, vmid: int, path: str) -> str:
    res = pvesim.pct("exec", str(vmid), "--", "cat", path)
    return res.stdout if res.returncode == 0 else ""


def test_mount_points_and_reboot(pvesim: PveSim) -> None:
    host = pvesim.dir / "hostdata"
    host.mkdir()
    (host / "hello").write_text("from the host\n")
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template(
        "sh.tar", busybox_image(Entrypoint=["/bin/sleep"], Cmd=["600"], Env=["PATH=/bin"])
    )
    hook, markers = marker_hook(pvesim)
    res = pvesim.pct(
        "create",
        str(vmid),
        tmpl,
        "--memory",
        "64",
        "--hookscript",
        hook,
        "--mp0",
        "local:1,mp=/data",
        "--mp1",
        f"{host},mp=/host,ro=1",
    )
    assert res.returncode == 0, res.stderr
    conf = pvesim.pct("config", str(vmid)).stdout
    assert f"mp0: local:{vmid}/subvol-{vmid}-disk-1.subvol,mp=/data,size=1G\n" in conf
    assert pvesim.pct("start", str(vmid)).returncode == 0
    assert pvesim.pct("exec", str(vmid), "--", "sh", "-c", "echo kept > /data/f").returncode == 0
    vol = pvesim.dir / "storage" / "local" / "images" / str(vmid) / f"subvol-{vmid}-disk-1.subvol"
    assert (vol / "f").read_text() == "kept\n" and (vol / "f").stat().st_uid == 100000
    assert pvesim.pct("exec", str(vmid), "--", "cat", "/host/hello").stdout == "from the host\n"
    res = pvesim.pct("exec", str(vmid), "--", "touch", "/host/x")
    assert res.returncode != 0 and not (host / "x").exists()
    upid = pvesim.api().nodes(NODE).lxc(vmid).status.reboot.post(timeout=1)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert pvesim.lxc_state(vmid) == "RUNNING"
    assert markers.read_text().split("\n")[2:6] == [
        f"{vmid} pre-stop",
        f"{vmid} post-stop",
        f"{vmid} pre-start",
        f"{vmid} post-start",
    ]
    assert pvesim.pct("exec", str(vmid), "--", "cat", "/data/f").stdout == "kept\n"
    # Every phase sees the caller's environment (the lxcri hookscript finds LXCRI_ROOT so),
    # post-stop also LXC's LXC_TARGET as under lxc-pve-poststop-hook.
    root = os.environ["LXCRI_ROOT"]
    assert Path(f"{markers}.env").read_text().splitlines() == [
        f"pre-start {root} none",
        f"post-start {root} none",
        f"pre-stop {root} none",
        f"post-stop {root} stop",
        f"pre-start {root} none",
        f"post-start {root} none",
    ]
    res = pvesim.pct("destroy", str(vmid), "--force")
    assert res.returncode == 0, res.stderr
    assert not vol.exists() and (host / "hello").exists()


def test_rootfs_on_a_zfspool_storage(zfs_dataset: str) -> None:
    from tests.pvesim.fixtures import start_sim

    sim = start_sim(zfs_pool=zfs_dataset)
    try:
        api = sim.api()
        assert "local-zfs" in [s["storage"] for s in api.nodes(NODE).storage.get()]
        tmpl = sim.add_template("web.tar", WEB)
        vmid = sim.vmid()
        # Privileged: the pool is mounted under pytest's 0700 tmp dir.
        upid = api.nodes(NODE).lxc.post(
            vmid=vmid,
            ostemplate=tmpl,
            rootfs="local-zfs:1",
            unprivileged=0,
            memory=64,
            net0=sim.net0(7),
        )
        assert sim.wait_task(upid)["exitstatus"] == "OK"
        ds = f"{zfs_dataset}/subvol-{vmid}-disk-0"
        assert (
            api.nodes(NODE).lxc(vmid).config.get()["rootfs"]
            == f"local-zfs:subvol-{vmid}-disk-0,size=1G"
        )
        out = subprocess.run(
            ["zfs", "get", "-H", "-o", "value", "refquota,mountpoint", ds],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out[0] == "1G" and (Path(out[1]) / "bin" / "busybox").is_file()
        assert sim.wait_task(api.nodes(NODE).lxc(vmid).status.start.post())["exitstatus"] == "OK"
        assert "hello from lxcri" in wait_for(
            lambda: _try_get(f"http://{sim.ip(7)}/index.html"), what="httpd on the zfs rootfs"
        )
        assert sim.wait_task(api.nodes(NODE).lxc(vmid).delete(force=1))["exitstatus"] == "OK"
        res = subprocess.run(["zfs", "list", ds], capture_output=True, text=True)
        assert res.returncode != 0
    finally:
        sim.close()


def test_host_managed_dhcp_and_interfaces(pvesim: PveSim) -> None:
    leases = pvesim.dir / "udhcpd.leases"
    leases.touch()
    conf = pvesim.dir / "udhcpd.conf"
    conf.write_text(
        f"start {pvesim.ip(100)}\nend {pvesim.ip(120)}\ninterface {pvesim.bridge}\n"
        f"lease_file {leases}\npidfile {pvesim.dir / 'udhcpd.pid'}\n"
        f"opt router {pvesim.gateway}\nopt subnet 255.255.255.0\n"
    )
    server = subprocess.Popen(
        ["busybox", "udhcpd", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        vmid = pvesim.vmid()
        tmpl = pvesim.add_template("web.tar", WEB)
        net0 = f"name=eth0,bridge={pvesim.bridge},ip=dhcp,host-managed=1"
        res = pvesim.pct("create", str(vmid), tmpl, "--memory", "64", "--net0", net0)
        assert res.returncode == 0, res.stderr
        api = pvesim.api()
        upid = api.nodes(NODE).lxc(vmid).status.start.post()
        assert pvesim.wait_task(upid)["exitstatus"] == "OK"
        assert "net0: DHCP lease taken by the host" in pvesim.task_log(upid)
        ifaces = {i["name"]: i for i in api.nodes(NODE).lxc(vmid).interfaces.get()}
        addr = str(ifaces["eth0"]["inet"]).split("/")[0]
        assert int(addr.rsplit(".", 1)[1]) in range(100, 121)
        assert "hello from lxcri" in wait_for(
            lambda: _try_get(f"http://{addr}/index.html"), what="httpd at the leased address"
        )
        assert pvesim.pct("stop", str(vmid)).returncode == 0
    finally:
        server.terminate()
        server.wait(10)


def test_changes_to_a_running_ct_wait_in_pending(pvesim: PveSim) -> None:
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("web.tar", WEB)
    assert pvesim.pct("create", str(vmid), tmpl, "--memory", "64").returncode == 0
    api = pvesim.api()
    ct = api.nodes(NODE).lxc(vmid)
    assert pvesim.wait_task(ct.status.start.post())["exitstatus"] == "OK"
    ct.config.put(memory=128, tags="web", entrypoint="/bin/sleep 600", cmode="tty")
    conf_path = pvesim.dir / "etc-pve" / "lxc" / f"{vmid}.conf"
    text = conf_path.read_text()
    main, _, pend = text.partition("[pve:pending]\n")
    assert "memory: 128\n" in main and "tags: web\n" in main  # hot-/fast-plugged
    assert pend == "cmode: tty\nentrypoint: /bin/sleep 600\n"
    assert ct.config.get()["entrypoint"] == "/bin/sleep 600"  # pending applied in the view
    assert ct.config.get(current=1)["entrypoint"] == '/bin/httpd "-f" "-p" "80" "-h" "/www"'
    rows = {r["key"]: r for r in ct.pending.get()}
    assert rows["entrypoint"]["pending"] == "/bin/sleep 600" and "pending" not in rows["memory"]
    ct.config.put(revert="cmode")
    assert "cmode" not in conf_path.read_text().partition("[pve:pending]")[2]
    upid = ct.status.shutdown.post(timeout=1, forceStop=1)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert pvesim.wait_task(ct.status.start.post())["exitstatus"] == "OK"
    text = conf_path.read_text()
    assert "[pve:pending]" not in text and "entrypoint: /bin/sleep 600\n" in text
    res = pvesim.pct("exec", str(vmid), "--", "cat", "/proc/1/cmdline")
    assert res.stdout.split("\0")[:2] == ["/bin/sleep", "600"]
    assert pvesim.pct("stop", str(vmid)).returncode == 0
