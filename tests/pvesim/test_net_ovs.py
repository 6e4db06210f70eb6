"""The simulator's CTs on an Open vSwitch bridge: netN's tag=, trunks=, rate= and mtu= applied
to the host end vethVMIDiN as pve-container does (lxcnetaddbr / PVE::Network)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.network.test_ovs_live import OvsNet, ovsnet
from tests.pvesim.fixtures import NODE, PveSim, pvesim
from tests.pvesim.test_containers import WEB

__all__ = ["ovsnet", "pvesim"]  # fixtures defined elsewhere
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_ct_on_ovs_gets_tag_trunks_rate_and_mtu(ovsnet: OvsNet, pvesim: PveSim) -> None:
    api = pvesim.api()
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("web.tar", WEB)
    net0 = f"name=eth0,bridge={ovsnet.bridge},ip=10.209.0.2/24,tag=10,trunks=20;30,rate=3,mtu=1450"
    upid = api.nodes(NODE).lxc.post(vmid=vmid, ostemplate=tmpl, memory=64, net0=net0)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    upid = api.nodes(NODE).lxc(vmid).status.start.post()
    assert pvesim.wait_task(upid)["exitstatus"] == "OK", pvesim.task_log(upid)
    veth = f"veth{vmid}i0"
    assert ovsnet.lab.vsctl("get", "port", veth, "tag").strip() == "10"
    assert ovsnet.lab.vsctl("get", "port", veth, "trunks").strip() == "[20, 30]"
    link = json.loads(subprocess.check_output(["ip", "-j", "link", "show", veth]))[0]
    assert link["mtu"] == 1450
    # 3 MiB/s = 25165824 bit/s
    classes = subprocess.check_output(["tc", "class", "show", "dev", veth], text=True)
    assert "rate 25165Kbit" in classes
    upid = api.nodes(NODE).lxc(vmid).status.stop.post()
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
