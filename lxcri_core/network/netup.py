"""The interface's ``lxc.net.0.script.up``: VLAN tag, trunks and rate limit on the host end.

LXC creates the veth, adds the host end to the bridge (``ovs-vsctl add-port``
itself for an OVS bridge) and then runs this hook, through ``sh -c``: so the
command line carries only numbers lxcri checked (``up_args``) and the port
name comes from LXC (``LXC_NET_PEER`` with hook version 1, the last argument
with version 0), checked again before it reaches ``ovs-vsctl`` or ``tc``.

- ``tag=`` / ``trunks=``: OVS port settings (``ovs.port_vlan_cmd``). A Linux
  bridge cannot carry them here (no ``vlan_filtering`` in this kernel): the
  create refuses that (``check_bridge_vlans``), and the hook fails the start
  rather than leave the port untagged.
- ``txcsum=off`` on an OVS bridge: the container end stops leaving TCP/UDP
  checksums to the NIC. Open vSwitch's userspace datapath reads the veth with a
  packet socket and passes such frames on unfinished, so the host's stack
  drops the replies of a published port (ICMP has no offload and still works).
- ``dhcp=IFNAME`` (as ``lxc.hook.start-host``, when the interface is
  configured by LXC and the container's init runs): one lease taken by the
  host for the container, as Proxmox's ``host-managed=1`` does: busybox
  ``udhcpc`` in the container's network namespace (host binaries and mount
  namespace: nothing of the image runs), its event script ``EVENT_SCRIPT``
  applying the address and default route. No renewals (a daemon there would
  hold the namespace after the container stops). When no server answers the
  container runs without an address (its own software may still configure
  one) and the LXC log says so.
- ``rate=`` (MB/s, as pct): an HTB class on the host end's egress, i.e.
  traffic toward the container (``rate_cmds``). Proxmox also polices the
  other direction with an ingress ``police`` filter; this kernel has neither
  ``cls_basic`` nor ``act_police``, so that part is tried and, failing, said
  on stderr (the LXC log) rather than silently skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import LxcriError, NetworkError
from lxcri_core.network.command import Runner, checked, run_cmd
from lxcri_core.network.ovs import (
    check_name,
    check_vlan,
    is_ovs_bridge,
    parse_trunks,
    port_vlan_cmd,
)

if TYPE_CHECKING:
    from lxcri_core.spec.model import NetworkSpec

#: bytes per MB in pct's ``rate=`` (PVE::Network::tap_rate_limit: MB/s * 1024 * 1024)
_MB = 1024 * 1024


def dhcp_args(net: NetworkSpec) -> list[str]:
    """The start-host hook's arguments: a lease for an interface nothing else configures."""
    return [f"dhcp={check_name(net.name)}"] if net.mode == "bridge" and net.ip == "dhcp" else []


def up_args(net: NetworkSpec, ovs: bool = False) -> list[str]:
    """The checked ``key=value`` arguments of the hook for ``net`` (``ovs``: its bridge is
    an OVS bridge); [] when it has nothing to do."""
    args = ["txcsum=off"] if ovs else []
    if net.vlan is not None:
        args.append(f"tag={check_vlan(net.vlan)}")
    if net.trunks:
        args.append("trunks=" + ",".join(str(check_vlan(t, "trunks")) for t in net.trunks))
    if net.rate:
        args.append(f"rate={int(net.rate * _MB)}")  # bytes/s, an integer for sh -c
    return args


def on_ovs(bridge: str, run: Runner = run_cmd) -> bool:
    """Whether ``bridge`` is an OVS bridge (a Linux bridge is known without asking OVS)."""
    if Path(f"/sys/class/net/{check_name(bridge, 'bridge')}/bridge").is_dir():
        return False
    return is_ovs_bridge(bridge, run)


def check_bridge_vlans(net: NetworkSpec, bridge: str, run: Runner = run_cmd) -> None:
    """Refuse ``tag=``/``trunks=`` on anything but an OVS bridge (never a silent drop)."""
    if (net.vlan is not None or net.trunks) and not is_ovs_bridge(bridge, run):
        raise NetworkError(
            f"tag=/trunks= on bridge {bridge}: VLANs need an Open vSwitch bridge here "
            "(this kernel has no bridge vlan_filtering); attach to an OVS bridge or drop them"
        )


def rate_cmds(dev: str, bytes_per_s: int) -> list[list[str]]:
    """tc argv limiting ``dev``'s egress to ``bytes_per_s`` (replacing any root qdisc)."""
    check_name(dev, "interface")
    if not 0 < bytes_per_s <= 10**15:
        raise NetworkError(f"rate {bytes_per_s} B/s is out of range")
    rate, burst = f"{bytes_per_s}bps", f"{_MB}b"
    return [
        ["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "1"],
        ["tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
         "rate", rate, "burst", burst],
    ]  # fmt: skip


def police_cmds(dev: str, bytes_per_s: int) -> list[list[str]]:
    """Proxmox's ingress policing (traffic from the container); needs cls_basic + act_police."""
    rate, burst = f"{bytes_per_s}bps", f"{_MB}b"
    return [
        ["tc", "qdisc", "replace", "dev", dev, "handle", "ffff:", "ingress"],
        ["tc", "filter", "replace", "dev", dev, "parent", "ffff:", "prio", "50", "basic",
         "police", "rate", rate, "burst", burst, "mtu", "64kb", "drop"],
    ]  # fmt: skip


_SIOCETHTOOL, _ETHTOOL_STXCSUM = 0x8946, 0x17


_CLONE_NEWNET = 0x40000000

#: udhcpc's event script; ``$interface``, ``$ip``, ``$mask``, ``$router`` come from udhcpc,
#: which checked them as DHCP option values (an address, a number).
EVENT_SCRIPT = """#!/bin/sh
case "$1" in
bound|renew)
    ip addr flush dev "$interface" scope global
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


def dhcp_cmd(pid: int, ifname: str, script: Path) -> list[str]:
    """One DHCP lease for ``ifname`` in the netns of ``pid``, applied by ``script``."""
    if pid <= 1:
        raise NetworkError(f"pid {pid} is no container's init")
    return [
        "nsenter", "-t", str(pid), "-n", "busybox", "udhcpc", "-i", check_name(ifname),
        "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", str(script),
    ]  # fmt: skip


def take_lease(pid: int, ifname: str, run: Runner = run_cmd) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lxcri-dhcp-") as d:
        script = Path(d) / "event"
        script.write_text(EVENT_SCRIPT)
        script.chmod(0o700)
        checked(run(dhcp_cmd(pid, ifname, script), None), f"DHCP on {ifname}")


def peer_index(port: str, sys_net: Path = Path("/sys/class/net")) -> int:
    """The ifindex of ``port``'s veth peer (in the peer's namespace)."""
    return int((sys_net / check_name(port, "port") / "iflink").read_text())


def enter_netns(pid: int) -> None:
    """Move this thread into the network namespace of ``pid`` (no way back: call last)."""
    import ctypes

    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def tx_csum_off(index: int) -> str:
    """``ethtool -K IF tx off`` on link ``index`` of this thread's namespace, by the
    SIOCETHTOOL ioctl (no ethtool binary here); returns the link's name."""
    import array
    import fcntl
    import socket
    import struct

    name = socket.if_indextoname(index)
    value = array.array("I", [_ETHTOOL_STXCSUM, 0])
    ifr = struct.pack("16sP", name.encode(), value.buffer_info()[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifr)
    return name


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """Our ``key=value`` arguments (LXC's own, with hook version 0, have no ``=``)."""
    out: dict[str, str] = {}
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep:
            continue
        if key not in ("tag", "trunks", "rate", "txcsum", "dhcp") or key in out:
            raise NetworkError(f"net-up hook: unexpected argument {a!r}")
        out[key] = value
    return out


def apply(
    args: Mapping[str, str], port: str, bridge: str, pid: int | None = None, run: Runner = run_cmd
) -> list[str]:
    """Set up ``port`` as ``args`` say; returns warnings (the part the kernel cannot do).

    ``pid`` is the container's init (``LXC_PID``): LXC creates the container end in its
    namespace at once, so ``txcsum=off`` enters that namespace, last of all.
    """
    check_name(port, "port")
    warnings: list[str] = []
    tag = int(args["tag"]) if args.get("tag", "").isdigit() else None
    if "tag" in args and tag is None:
        raise NetworkError(f"tag={args['tag']}: not a VLAN id")
    trunks = parse_trunks(args["trunks"]) if args.get("trunks") else ()
    if tag is not None or trunks:
        if not is_ovs_bridge(check_name(bridge, "bridge"), run):
            raise NetworkError(
                f"tag=/trunks= on {bridge}: not an Open vSwitch bridge, and this kernel has no "
                "bridge vlan_filtering"
            )
        checked(run(port_vlan_cmd(port, tag, trunks), None), f"setting VLANs of OVS port {port}")
    if "rate" in args:
        if not args["rate"].isdigit():
            raise NetworkError(f"rate={args['rate']}: not bytes per second")
        bps = int(args["rate"])
        for argv in rate_cmds(port, bps):
            checked(run(argv, None), f"limiting the rate of {port}")
        for argv in police_cmds(port, bps):
            r = run(argv, None)
            if r.returncode != 0:
                why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
                warnings.append(
                    f"{port}: rate limits traffic toward the container only; policing the "
                    f"other direction failed: {why}"
                )
                break
    if args.get("txcsum") == "off":  # last: it leaves the host's namespace
        try:
            index = peer_index(port)
            if pid is not None:
                enter_netns(pid)
            tx_csum_off(index)
        except (OSError, ValueError) as e:
            warnings.append(f"{port}: TX checksumming of its container end left on: {e}")
    return warnings


def main(argv: Sequence[str] = sys.argv[1:], env: Mapping[str, str] = os.environ) -> int:
    """The hook's entry point: 0, or 1 with one line on stderr (LXC then fails the start)."""
    try:
        args = parse_args(argv)
        if "dhcp" in args:  # lxc.hook.start-host: the container's init runs, eth0 is set up
            pid = env.get("LXC_PID", "")
            if not pid.isdigit():
                raise NetworkError("dhcp: LXC_PID is not set (run as lxc.hook.start-host)")
            try:
                take_lease(int(pid), args["dhcp"])
            except NetworkError as e:
                print(f"lxcri net-up: warning: no address: {e}", file=sys.stderr)
            return 0
        # hook version 1: the environment; version 0: "... net up veth LINK PEER" appended
        plain = [a for a in argv if "=" not in a]
        port = env.get("LXC_NET_PEER") or (plain[-1] if plain else "")
        bridge = env.get("LXC_NET_PARENT") or (plain[-2] if len(plain) >= 2 else "")
        pid = env.get("LXC_PID", "")
        for w in apply(args, port, bridge, int(pid) if pid.isdigit() else None):
            print(f"lxcri net-up: warning: {w}", file=sys.stderr)
    except (LxcriError, ValueError) as e:
        print(f"lxcri net-up: {e}", file=sys.stderr)
        return 1
    return 0


def hook_path() -> Path:
    from lxcri_core.containers.paths import libexec

    return libexec("lxcri-net-up")
