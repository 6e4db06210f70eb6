"""Real LXC containers on a real Open vSwitch bridge (userspace datapath) through `lxcri run
--net0 ...,tag=,rate=,mtu=,firewall=`: Proxmox's veth name, the tag isolating, the rate and
MTU on the host end, and `lxcri inspect-network` agreeing with ip and ovs-vsctl."""

from __future__ import annotations

import json
import random
import secrets
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_lxcri
from tests.network.test_ovs_live import OvsNet, ovsnet
from tests.support import l2probe
from tests.support.lxcenv import BUSYBOX_REF, DEMO_REF, LxcEnv, free_port, wait_for
from tests.support.netlab import free_subnet

__all__ = ["ovsnet"]  # the fixture, from test_ovs_live

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _lxcri(lxenv: LxcEnv, *args: str) -> subprocess.CompletedProcess[str]:
    # Proxmox's veth names: a VMID no other test root hands out (they start at 100)
    return run_lxcri(*args, env={**lxenv.env, "LXCRI_VETH_NAMES": "proxmox"})


def test_container_on_ovs_with_tag_rate_mtu(lxenv: LxcEnv, ovsnet: OvsNet) -> None:
    vmid = random.randrange(700000, 799999)
    veth = f"veth{vmid}i0"
    net0 = f"name=eth0,bridge={ovsnet.bridge},ip=10.207.0.2/24,tag=10,rate=5,mtu=1400,firewall=1"
    p = _lxcri(
        lxenv, "run", "-d", "--name", "ovs1", "--vmid", str(vmid), "--net0", net0,
        BUSYBOX_REF, "sleep 300",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lxenv.remember("ovs1")
    # Proxmox's name, plugged into the OVS bridge by LXC, tagged by the net-up hook
    assert veth in ovsnet.lab.vsctl("list-ports", ovsnet.bridge).split()
    assert ovsnet.lab.vsctl("get", "port", veth, "tag").strip() == "10"
    link = json.loads(subprocess.check_output(["ip", "-j", "link", "show", veth]))[0]
    assert link["mtu"] == 1400
    assert "rate 41943Kbit" in subprocess.check_output(
        ["tc", "class", "show", "dev", veth], text=True
    )
    # the tag isolates: a peer on VLAN 10 reaches the container, one on VLAN 20 does not
    same, psame = ovsnet.port(1, "10.207.0.3/24")
    other, pother = ovsnet.port(2, "10.207.0.4/24")
    subprocess.run(["ovs-vsctl", "set", "port", psame, "tag=10"], check=True, env=ovsnet.lab.env)
    subprocess.run(["ovs-vsctl", "set", "port", pother, "tag=20"], check=True, env=ovsnet.lab.env)
    assert l2probe.ping(same, "10.207.0.2") == "reply"
    assert l2probe.ping(other, "10.207.0.2", 2) == "none"
    # and between real containers: ovs2 on VLAN 10 reaches ovs1, ovs3 on VLAN 20 does not
    for name, ip, vlan in (("ovs2", "10.207.0.5", 10), ("ovs3", "10.207.0.6", 20)):
        net = f"name=eth0,bridge={ovsnet.bridge},ip={ip}/24,tag={vlan}"
        p = _lxcri(
            lxenv, "run", "-d", "--name", name, "--vmid", str(vmid + vlan), "--net0", net,
            BUSYBOX_REF, "sleep 300",
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        lxenv.remember(name)
    ping = ("exec", "/bin/busybox", "ping", "-c", "1", "-W", "2", "10.207.0.2")
    p = _lxcri(lxenv, ping[0], "ovs2", *ping[1:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert _lxcri(lxenv, ping[0], "ovs3", *ping[1:]).returncode != 0
    # inspect-network: the veth's owner, its tag, the container's addresses as ip shows them
    p = _lxcri(lxenv, "inspect-network", str(vmid), "-o", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    (v,) = doc["veths"]
    assert (v["name"], v["container"], v["bridge"], v["ovs"], v["tag"], v["name_vmid"]) == (
        veth,
        "ovs1",
        ovsnet.bridge,
        True,
        10,
        vmid,
    )
    assert v["peer_ifindex"] == link["link_index"]
    (ct,) = doc["containers"]
    assert ct["firewall"] is True
    pid = ct["pid"]
    inside = json.loads(
        subprocess.check_output(["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show"])
    )
    want = {
        x["ifname"]: sorted(f"{a['local']}/{a['prefixlen']}" for a in x["addr_info"])
        for x in inside
    }
    assert {i["name"]: sorted(i["addresses"]) for i in ct["interfaces"]} == want
    assert "10.207.0.2/24" in want["eth0"]
    p = _lxcri(lxenv, "inspect-network")
    assert p.returncode == 0 and veth in p.stdout and "ovs1" in p.stdout


def test_tag_on_a_linux_bridge_is_refused_at_create(lxenv: LxcEnv) -> None:
    bridge = lxenv.config().bridge
    p = run_lxcri(
        "create", "--name", "lb1", "--net0", f"name=eth0,bridge={bridge},tag=10",
        BUSYBOX_REF, "true", env=lxenv.env,
    )  # fmt: skip
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "vlan_filtering" in p.stderr
    assert run_lxcri("list", "-q", env=lxenv.env).stdout.strip() == ""
    p = run_lxcri("inspect-network", "nosuch", env=lxenv.env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and p.stdout == "", p.stderr


def test_published_port_on_an_ovs_bridge_answers_from_the_host(
    lxenv: LxcEnv, ovsnet: OvsNet
) -> None:
    # the OVS bridge's own (internal) port is the host's address on that network
    net = free_subnet([])
    gw, ct_ip = str(net.network_address + 1), str(net.network_address + 2)
    subprocess.run(["ip", "addr", "add", f"{gw}/24", "dev", ovsnet.bridge], check=True)
    subprocess.run(["ip", "link", "set", ovsnet.bridge, "up"], check=True)
    lxenv.add_demo()
    port = free_port()
    vmid = random.randrange(700000, 799999)
    p = _lxcri(
        lxenv, "run", "-d", "--name", "ovsweb", "--vmid", str(vmid), "-p", f"{port}:80",
        "--net0", f"name=eth0,bridge={ovsnet.bridge},ip={ct_ip}/24,gw={gw}",
        DEMO_REF,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lxenv.remember("ovsweb")
    # through the host's address on that bridge (127.0.0.1 would need route_localnet on
    # it, which lxcri sets on its own bridge only). The TCP replies cross OVS's userspace
    # datapath: without the net-up hook's txcsum=off the host drops them (bad checksums)
    got = wait_for(lambda: _get(gw, port), timeout=30, what=f"{gw}:{port}")
    assert "lxcri demo" in got
    # a host process that binds the port afterwards is shadowed by the DNAT: shown
    with socket.socket() as late:
        late.bind(("0.0.0.0", port))
        late.listen(1)
        p = _lxcri(lxenv, "inspect-network", "ovsweb", "-o", "json")
    (pub,) = json.loads(p.stdout)["published"]
    assert (pub["container"], pub["host_port"], pub["container_port"], pub["container_ip"]) == (
        "ovsweb",
        port,
        80,
        ct_ip,
    )
    assert pub["shadows"] == f"tcp 0.0.0.0:{port}"
    # removed with the container: the veth and the OVS port
    assert _lxcri(lxenv, "rm", "-f", "ovsweb").returncode == 0
    assert not Path(f"/sys/class/net/veth{vmid}i0").exists()
    assert f"veth{vmid}i0" not in ovsnet.lab.vsctl("list-ports", ovsnet.bridge).split()


def _get(host: str, port: int) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_dhcp_on_an_admin_bridge_leases_the_address(lxenv: LxcEnv, tmp_path: Path) -> None:
    """No --ip on a bridge that is not lxcri's: the host takes a lease for the container
    (busybox udhcpc in its netns, as Proxmox's host-managed=1), nothing of the image runs."""
    br = f"lxdh{secrets.token_hex(3)}"
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    server = None
    net = free_subnet([])
    pre = str(net.network_address)[: -len(".0")]
    try:
        subprocess.run(["ip", "addr", "add", f"{pre}.1/24", "dev", br], check=True)
        subprocess.run(["ip", "link", "set", br, "up"], check=True)
        conf = tmp_path / "udhcpd.conf"
        conf.write_text(
            f"start {pre}.100\nend {pre}.120\n"
            f"interface {br}\nlease_file {tmp_path / 'leases'}\npidfile {tmp_path / 'pid'}\n"
            f"opt router {pre}.1\nopt subnet 255.255.255.0\n"
        )
        (tmp_path / "leases").touch()
        server = subprocess.Popen(
            ["busybox", "udhcpd", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        p = run_lxcri(
            "run", "-d", "--name", "dh1", "--network", f"bridge={br}", BUSYBOX_REF, "sleep 300",
            env=lxenv.env,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        lxenv.remember("dh1")
        p = run_lxcri("inspect-network", "dh1", "-o", "json", env=lxenv.env)
        (ct,) = json.loads(p.stdout)["containers"]
        (eth0,) = [i for i in ct["interfaces"] if i["name"] == "eth0"]
        v4 = [a for a in eth0["addresses"] if "." in a]
        assert len(v4) == 1 and v4[0].startswith(f"{pre}.1") and v4[0].endswith("/24")
        assert int(v4[0].split("/")[0].rsplit(".", 1)[1]) in range(100, 121)
        assert any(r["dst"] == "default" and r["gateway"] == f"{pre}.1" for r in ct["routes"])
        assert run_lxcri("rm", "-f", "dh1", env=lxenv.env).returncode == 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        subprocess.run(["ip", "link", "del", br], check=False)


def test_proxmox_veth_name_survives_quick_restarts(lxenv: LxcEnv) -> None:
    """The host end keeps its name across stop/start at once (the old pair is gone by then)."""
    vmid = random.randrange(700000, 799999)
    p = _lxcri(lxenv, "run", "-d", "--name", "rs1", "--vmid", str(vmid), BUSYBOX_REF, "sleep 300")
    assert p.returncode == 0, p.stderr
    lxenv.remember("rs1")
    for _ in range(3):
        assert Path(f"/sys/class/net/veth{vmid}i0").exists()
        assert _lxcri(lxenv, "stop", "-t", "1", "rs1").returncode == 0
        p = _lxcri(lxenv, "start", "rs1")
        assert p.returncode == 0, p.stderr
    assert _lxcri(lxenv, "rm", "-f", "rs1").returncode == 0
