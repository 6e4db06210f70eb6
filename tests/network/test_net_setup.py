"""Setting a container's interface up: pct's ``--net0`` keys parsed and checked, rendered for
LXC and Proxmox, and the ``net-up`` hook on a real OVS port and a Linux bridge port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lxcri_core.containers import pct_props
from lxcri_core.errors import NetworkError, SpecError
from lxcri_core.network import netup
from lxcri_core.spec.build import _network
from lxcri_core.spec.lxc_config import render_lxc_config
from lxcri_core.spec.model import ContainerSpec, NetworkSpec
from lxcri_core.spec.options import RunOptions
from lxcri_core.spec.pve_config import render_pve_config
from tests.network.test_ovs_live import OvsNet, ovsnet
from tests.support.ovslab import OvsLab

HOOK = Path(__file__).resolve().parents[2] / "hooks" / "lxcri-net-up"


__all__ = ["ovsnet"]  # the fixture, from test_ovs_live


def _net(net0: str) -> NetworkSpec:
    opts, _ = pct_props.apply(RunOptions(), {"net0": net0}, "lxcri0")
    return _network(opts)


def test_net0_tag_trunks_rate_firewall_mtu() -> None:
    net = _net(
        "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,tag=10,trunks=20;30,rate=12.5,firewall=1,mtu=1400"
    )
    assert (net.bridge, net.vlan, net.trunks, net.rate, net.firewall, net.mtu) == (
        "vmbr1",
        10,
        (20, 30),
        12.5,
        True,
        1400,
    )
    assert netup.up_args(net) == ["tag=10", "trunks=20,30", f"rate={int(12.5 * 1024 * 1024)}"]
    assert netup.up_args(_net("name=eth0,bridge=vmbr1")) == []
    assert netup.up_args(_net("name=eth0,bridge=vmbr1"), ovs=True) == ["txcsum=off"]
    assert netup.dhcp_args(_net("name=eth0,bridge=vmbr1")) == ["dhcp=eth0"]
    assert netup.dhcp_args(_net("name=eth0,bridge=vmbr1,ip=10.0.0.5/24")) == []
    assert netup.dhcp_args(_net("name=eth0,bridge=vmbr1,ip=manual")) == []


@pytest.mark.parametrize(
    "bad",
    [
        "tag=0",
        "tag=4095",
        "tag=1;2",
        "trunks=10;x",
        "trunks=5000",
        "rate=-1",
        "rate=0",
        "rate=1e9",
        "rate=5;touch /tmp/x",
        "firewall=yes",
        "bridge=br/../x",
        "bridge=aaaaaaaaaaaaaaaa",
    ],
)
def test_net0_bad_values_are_one_clear_error(bad: str) -> None:
    with pytest.raises(SpecError):
        _net(f"name=eth0,{bad}")


def _spec(net: NetworkSpec) -> ContainerSpec:
    return ContainerSpec(image="busybox", args=("true",), network=net)


def test_lxc_config_names_the_host_veth_and_runs_the_hook() -> None:
    net = NetworkSpec(bridge="vmbr1", vlan=10, host_veth="veth4242i0", ip="10.0.0.5/24")
    cfg = render_lxc_config(
        _spec(net),
        name="c",
        rootfs_path=Path("/r"),
        state_dir=Path("/s"),
        hooks={"pre-start": "/hook", "net-up": "/py /net-up tag=10"},
    )
    assert cfg.value("lxc.net.0.veth.pair") == "veth4242i0"
    assert cfg.value("lxc.net.0.script.up") == "/py /net-up tag=10"
    assert cfg.values("lxc.hook.net-up") == []
    assert cfg.value("lxc.hook.pre-start") == "/hook"


def test_pve_config_keeps_tag_trunks_rate_firewall() -> None:
    net = NetworkSpec(bridge="vmbr1", vlan=10, trunks=(20, 30), rate=12.5, firewall=True, ip="dhcp")
    net0 = render_pve_config(_spec(net), 100).main.get("net0") or ""
    assert "tag=10" in net0 and "trunks=20;30" in net0 and "rate=12.5" in net0
    assert "firewall=1" in net0


def _hook(port: str, bridge: str, *args: str, **more: str) -> subprocess.CompletedProcess[str]:
    """The hook as LXC runs it (hook version 1: the port and bridge in the environment)."""
    import os

    env = {**os.environ, "LXC_NET_PEER": port, "LXC_NET_PARENT": bridge, "LXC_HOOK_TYPE": "up"}
    env.update(more)
    return subprocess.run(
        [sys.executable, str(HOOK), *args], env=env, capture_output=True, text=True
    )


def test_hook_sets_tag_trunks_and_rate_on_an_ovs_port(ovsnet: OvsNet) -> None:
    _, port = ovsnet.port(1)
    p = _hook(port, ovsnet.bridge, "tag=10", "trunks=20,30", f"rate={5 * 1024 * 1024}")
    assert p.returncode == 0, p.stderr
    assert ovsnet.lab.vsctl("get", "port", port, "tag").strip() == "10"
    assert ovsnet.lab.vsctl("get", "port", port, "trunks").strip() == "[20, 30]"
    # tc has no JSON for htb classes: 5 MiB/s = 41943040 bit/s
    classes = subprocess.check_output(["tc", "class", "show", "dev", port], text=True)
    assert "class htb 1:1 root" in classes and "rate 41943Kbit" in classes
    # this kernel cannot police the other direction: said, not hidden
    assert "toward the container only" in p.stderr or p.stderr == ""


def test_hook_version_0_arguments(ovsnet: OvsNet) -> None:
    _, port = ovsnet.port(1)
    p = subprocess.run(
        [sys.executable, str(HOOK), "tag=12", "ct", "net", "up", "veth", ovsnet.bridge, port],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert ovsnet.lab.vsctl("get", "port", port, "tag").strip() == "12"


def test_tag_on_a_linux_bridge_fails_clearly(ovs: OvsLab) -> None:
    """No silent drop: the port would be untagged on a bridge without vlan_filtering."""
    tag = OvsNet(ovs).tag
    br, host = f"lxlb{tag}", f"lxlv{tag}"
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    try:
        subprocess.run(
            ["ip", "link", "add", host, "type", "veth", "peer", "name", f"{host}p"], check=True
        )
        subprocess.run(["ip", "link", "set", host, "master", br], check=True)
        p = _hook(host, br, "tag=10")
        assert p.returncode == 1 and p.stderr.count("\n") == 1
        assert "not an Open vSwitch bridge" in p.stderr
        with pytest.raises(NetworkError, match="vlan_filtering"):
            netup.check_bridge_vlans(NetworkSpec(bridge=br, vlan=10), br)
        netup.check_bridge_vlans(NetworkSpec(bridge=br), br)  # no VLAN: fine
    finally:
        subprocess.run(["ip", "link", "del", host], check=False)
        subprocess.run(["ip", "link", "del", br], check=False)


@pytest.mark.parametrize(
    "env",
    [
        {"LXC_NET_PEER": "x;touch /tmp/lxcri-pwned", "LXC_NET_PARENT": "vmbr1"},
        {"LXC_NET_PEER": "--help", "LXC_NET_PARENT": "vmbr1"},
        {"LXC_NET_PEER": "veth100i0", "LXC_NET_PARENT": "../../etc"},
    ],
)
def test_hook_refuses_hostile_names(env: dict[str, str]) -> None:
    assert netup.main(["tag=10"], env) == 1
    assert netup.main(["tag=10", "evil=1"], {"LXC_NET_PEER": "veth100i0"}) == 1
    assert not Path("/tmp/lxcri-pwned").exists()


TX_CSUM = """
import array, fcntl, socket, struct, sys
v = array.array("I", [0x16, 0])  # ETHTOOL_GTXCSUM
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    fcntl.ioctl(s.fileno(), 0x8946, struct.pack("16sP", sys.argv[1].encode(), v.buffer_info()[0]))
print(v[1])
"""


def _tx_csum(ifname: str, ns: str | None = None) -> int:
    """ETHTOOL_GTXCSUM of ``ifname`` (no ethtool binary here), in namespace ``ns``."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    return int(subprocess.check_output([*pre, sys.executable, "-c", TX_CSUM, ifname]))


def test_hook_turns_off_tx_checksumming_of_the_container_end(ovsnet: OvsNet) -> None:
    """As LXC runs it: the container end already in the container's namespace (LXC_PID)."""
    ns, host = ovsnet.port(1)
    assert _tx_csum("eth0", ns) == 1
    p = _hook(host, ovsnet.bridge, "txcsum=off", LXC_PID=str(ovsnet.sleeper(ns)))
    assert p.returncode == 0, p.stderr
    assert _tx_csum("eth0", ns) == 0 and _tx_csum(host) == 1
