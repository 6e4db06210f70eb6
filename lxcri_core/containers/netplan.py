"""The network plan of a plain-LXC container: lxcri's bridge, a leased address, its release."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers.record import (
    ContainerRecord,
)
from lxcri_core.log import get_logger
from lxcri_core.spec.model import ContainerSpec

log = get_logger(__name__)


def _plain_lxc_network(
    cfg: Config, spec: ContainerSpec, cid: str, opts: Any, vmid: int = 0
) -> tuple[ContainerSpec, dict[str, str]]:
    """On plain LXC the default network is lxcri's own bridge with an address from lxcri.

    The host end is named ``vethVMIDi0`` as on Proxmox; ``tag=``/``trunks=`` need an
    OVS bridge (refused on a Linux bridge, this kernel has no vlan_filtering).
    """
    net = spec.network
    if net.mode == "none":
        return spec, {}
    if vmid and cfg.veth_names == "proxmox":
        from lxcri_core.network.veth import host_veth_name

        net = dataclasses.replace(net, host_veth=host_veth_name(vmid, 0))
        spec = dataclasses.replace(spec, network=net)
    if opts.bridge:
        from lxcri_core.network import netup, ovs

        if not Path(f"/sys/class/net/{net.bridge}/bridge").is_dir() and not ovs.is_ovs_bridge(
            net.bridge
        ):
            from lxcri_core.errors import SpecError

            raise SpecError(f"--network bridge={net.bridge}: no such bridge on this host")
        netup.check_bridge_vlans(net, net.bridge)
        return spec, {"bridge": net.bridge, "ipv4": net.static_ipv4}
    if net.vlan is not None or net.trunks:
        from lxcri_core.network import netup

        netup.check_bridge_vlans(net, cfg.bridge)
    from lxcri_core.network import bridge, ipam

    v6 = cfg.bridge_subnet6 or None
    # the fast path checks IPv4 only; a dual-stack bridge goes the full way
    ready = None if v6 else bridge.bridge_ready(cfg.bridge, cfg.bridge_subnet)
    br = ready or bridge.ensure_bridge(cfg.bridge, cfg.bridge_subnet, v6)
    pool = ipam.Ipam.from_config(cfg, br.name, br.subnet, br.ipv6_subnet)
    # --ip is leased like any address, so the pool never hands it out twice
    lease = pool.reserve(cid, net.static_ipv4) if net.static_ipv4 else pool.allocate_lease(cid)
    ip = net.ip if "/" in net.ip else str(lease.ipv4)
    new_net = dataclasses.replace(
        net, bridge=br.name, ip=ip, gateway=net.gateway or str(lease.gateway)
    )
    if lease.ipv6 is not None and br.ipv6_gateway is not None and "/" not in net.ip6:
        new_net = dataclasses.replace(
            new_net, ip6=str(lease.ipv6), gateway6=net.gateway6 or str(br.ipv6_gateway.ip)
        )
    return dataclasses.replace(spec, network=new_net), {
        "bridge": br.name,
        "ipv4": ip.split("/")[0],
        "ipv6": str(lease.ipv6.ip) if lease.ipv6 else "",
    }


def ensure_bridge_for(cfg: Config, rec: ContainerRecord) -> None:
    """Before a start: lxcri's bridge may be gone (a reboot, an admin's `ip link del`)."""
    if rec.spec.network.mode != "bridge" or rec.bridge != cfg.bridge:
        return
    from lxcri_core.network import bridge

    v6 = cfg.bridge_subnet6 or None
    if v6 or not bridge.bridge_ready(cfg.bridge, cfg.bridge_subnet):
        bridge.ensure_bridge(cfg.bridge, cfg.bridge_subnet, v6)


def _release_address(cfg: Config, cid: str) -> None:
    from lxcri_core.network import ipam

    ipam.Ipam.from_config(cfg, cfg.bridge, cfg.bridge_subnet, cfg.bridge_subnet6 or None).release(
        cid
    )
