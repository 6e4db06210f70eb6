"""pct's property syntax on plain LXC: ``--net0``, ``--mpN``, ``--memory``, ``--cores``,
``--hostname``, ``--tags`` mapped onto ``RunOptions`` (the Proxmox backends pass
them to Proxmox as they are).

Only what plain LXC can honour is accepted; anything else is one clear error,
never a silent drop: a second network interface, a Proxmox storage volume
(``local-lvm:8``), an unknown key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from lxcri_core.errors import SpecError
from lxcri_core.spec.options import RunOptions

#: pct's tag syntax (pve-common's ``pve-tag``).
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*\Z")
_MP_RE = re.compile(r"^mp\d+\Z")
#: A Linux interface name (IFNAMSIZ - 1 characters, no "/" or ":").
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}\Z")


def split_props(text: str, key: str) -> tuple[str, dict[str, str]]:
    """``"vol,mp=/data,ro=1"`` -> ``("vol", {"mp": "/data", "ro": "1"})``: the default
    (unnamed) value first, then ``k=v`` pairs; a key given twice is an error."""
    default = ""
    props: dict[str, str] = {}
    for i, part in enumerate(text.split(",")):
        if "=" not in part:
            if i != 0 or not part:
                raise SpecError(f"--{key} {text!r}: {part!r} is no KEY=VALUE property")
            default = part
            continue
        k, v = part.split("=", 1)
        if k in props:
            raise SpecError(f"--{key} {text!r}: {k} is given twice")
        props[k] = v
    return default, props


def parse_tags(text: str) -> tuple[str, ...]:
    """``"a;b c,d"`` -> ``("a", "b", "c", "d")`` (pct splits on ``;``, ``,`` and spaces)."""
    tags = tuple(t for t in re.split(r"[;,\s]+", text) if t)
    for t in tags:
        if not TAG_RE.match(t):
            raise SpecError(f"--tags {text!r}: {t!r} is no valid tag (letters, digits, _-+.)")
    return tags


def memory_mib(text: str, key: str = "memory") -> str:
    """pct's ``--memory`` in MiB as a RunOptions size (``512`` -> ``512m``)."""
    if not text.isdigit() or int(text) < 16:
        raise SpecError(f"--{key} {text!r}: give the memory in MiB, at least 16")
    return f"{int(text)}m"


def apply(
    opts: RunOptions, pct: Mapping[str, str], default_bridge: str
) -> tuple[RunOptions, tuple[str, ...]]:
    """``opts`` with the pct properties applied, and the tags."""
    tags: tuple[str, ...] = ()
    volumes = list(opts.volumes)
    for key, value in sorted(pct.items()):
        if key == "memory":
            opts = dataclasses.replace(opts, memory=memory_mib(value))
        elif key == "cores":
            if not value.isdigit() or int(value) < 1:
                raise SpecError(f"--cores {value!r}: give a whole number of CPUs, at least 1")
            opts = dataclasses.replace(opts, cores=value)
        elif key == "hostname":
            opts = dataclasses.replace(opts, hostname=value)
        elif key == "tags":
            tags = parse_tags(value)
        elif key == "net0":
            opts = _net0(opts, value, default_bridge)
        elif _MP_RE.match(key):
            volumes.append(_mount_point(key, value))
        elif key.startswith("net"):
            raise SpecError(f"--{key}: plain LXC containers have one interface (net0)")
        else:
            raise SpecError(f"--{key}: not supported on plain LXC (use --backend pve-local)")
    return dataclasses.replace(opts, volumes=tuple(volumes)), tags


def _net0(opts: RunOptions, value: str, default_bridge: str) -> RunOptions:
    _, p = split_props(value, "net0")
    unknown = set(p) - {"name", "bridge", "ip", "gw", "ip6", "gw6", "mtu", "firewall", "type"}
    unknown -= {"tag", "trunks", "rate"}  # OVS VLANs and tc (network.ovs, network.netup)
    if unknown:
        raise SpecError(f"--net0: {', '.join(sorted(unknown))} not supported on plain LXC")
    if p.get("name", "eth0") != "eth0":
        raise SpecError("--net0 name=...: the interface of a plain LXC container is eth0")
    if p.get("type", "veth") != "veth":
        raise SpecError("--net0 type=...: only veth")
    bridge = p.get("bridge", "")
    if bridge and not _IFNAME_RE.match(bridge):  # it ends up in the LXC config and /sys paths
        raise SpecError(f"--net0 bridge={bridge}: not an interface name")
    ip = p.get("ip", "dhcp")
    if ip not in ("dhcp", "manual") and "/" not in ip:
        raise SpecError(f"--net0 ip={ip}: give dhcp or an address in CIDR form (10.0.0.5/24)")
    changes: dict[str, object] = {"network": "bridge"}
    if bridge and bridge != default_bridge:
        changes["bridge"] = bridge
    if ip != "dhcp":  # manual: no address and no DHCP lease (network.netup.dhcp_args)
        changes["ip"] = ip
    if p.get("gw"):
        changes["gateway"] = p["gw"]
    if p.get("ip6") and p["ip6"] not in ("auto", "dhcp", "manual"):
        changes["ip6"] = p["ip6"]
    if p.get("gw6"):
        changes["gateway6"] = p["gw6"]
    if p.get("mtu"):
        changes["mtu"] = p["mtu"]
    if p.get("tag"):
        changes["vlan"] = p["tag"]
    if p.get("trunks"):
        changes["trunks"] = p["trunks"]
    if p.get("rate"):
        changes["rate"] = p["rate"]
    if p.get("firewall", "0") not in ("0", "1"):
        raise SpecError(f"--net0 firewall={p['firewall']}: give 0 or 1")
    changes["firewall"] = p.get("firewall") == "1"
    return dataclasses.replace(opts, **changes)  # type: ignore[arg-type]


def _mount_point(key: str, value: str) -> str:
    """``VOLUME_OR_PATH,mp=/path[,ro=1]`` as ``-v``'s ``SRC:DST[:ro]``."""
    src, p = split_props(value, key)
    unknown = set(p) - {"mp", "ro", "volume", "backup"}
    if unknown:
        raise SpecError(f"--{key}: {', '.join(sorted(unknown))} not supported on plain LXC")
    src = p.get("volume", src)
    mp = p.get("mp", "")
    if not src or not mp.startswith("/"):
        raise SpecError(f"--{key} {value!r}: give VOLUME_OR_PATH,mp=/path[,ro=1]")
    if ":" in mp:  # -v's separator: it would change what is mounted where
        raise SpecError(f"--{key} mp={mp}: a mount point path cannot hold ':'")
    if ":" in src:
        raise SpecError(
            f"--{key} {src}: a Proxmox storage volume needs --backend pve-local; on plain "
            "LXC give a volume name or an absolute host path"
        )
    ro = p.get("ro", "0")
    if ro not in ("0", "1"):
        raise SpecError(f"--{key} ro={ro}: give 0 or 1")
    return f"{src}:{mp}" + (":ro" if ro == "1" else "")
