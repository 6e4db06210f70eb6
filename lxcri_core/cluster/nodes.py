"""The cluster's nodes and their addresses, from the Proxmox cluster file system.

pmxcfs keeps ``/etc/pve/.members`` (JSON: ``nodename``, the local node, and
``nodelist``: each node's ``ip``, ``online``) current on every node, and a
directory per node under ``/etc/pve/nodes``. A node spec on the command line
is ``NAME`` (address from .members, else the name itself, as Proxmox nodes
resolve each other through /etc/hosts) or ``NAME=ADDRESS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lxcri_core.errors import ConfigError
from lxcri_core.ids import check_id


@dataclass(frozen=True)
class ClusterNode:
    name: str
    address: str
    online: bool = True


def _members(pve_root: Path) -> dict[str, object]:
    try:
        data = json.loads((pve_root / ".members").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {pve_root / '.members'}: {e}") from None
    return data if isinstance(data, dict) else {}


def local_node(pve_root: Path) -> str | None:
    """This node's name as pmxcfs knows it (None outside a cluster)."""
    name = _members(pve_root).get("nodename")
    return name if isinstance(name, str) else None


def cluster_nodes(pve_root: Path) -> list[ClusterNode]:
    """Every node of the cluster (``nodes/`` and ``.members``), sorted by name."""
    members = _members(pve_root).get("nodelist")
    listed = members if isinstance(members, dict) else {}
    names = set(listed)
    if (pve_root / "nodes").is_dir():
        names |= {p.name for p in (pve_root / "nodes").iterdir() if p.is_dir()}
    out = []
    for name in sorted(names):
        info = listed.get(name)
        info = info if isinstance(info, dict) else {}
        ip = info.get("ip")
        out.append(
            ClusterNode(
                _name(name),
                ip if isinstance(ip, str) and ip else name,
                bool(info.get("online", 1)),
            )
        )
    return out


def _name(name: str) -> str:
    # a node name goes into ssh's argv and into messages: the one id rule, no option-like names
    return check_id(name, "node name", ConfigError)


def parse_node(spec: str, known: list[ClusterNode]) -> ClusterNode:
    """``NAME`` or ``NAME=ADDRESS`` -> a node (the address of a known NAME by default)."""
    name, sep, address = spec.partition("=")
    name = _name(name.strip())
    if sep:
        address = address.strip()
        if not address or address.startswith("-") or any(c.isspace() for c in address):
            raise ConfigError(f"node {spec!r}: the address must be a host name or IP address")
        return ClusterNode(name, address)
    for node in known:
        if node.name == name:
            return node
    return ClusterNode(name, name)
