"""lxcri's inspector reports (network, storage, security) as the dashboard's tables
and trees: the same columns ``lxcri inspect-*`` prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lxcri_tui.fmt import human_size
from lxcri_tui.source import Node, Section, StorageView

if TYPE_CHECKING:
    from lxcri_core.network.netreport import NetworkReport
    from lxcri_core.security.hostfacts import HostFacts
    from lxcri_core.security.report import ContainerSecurity
    from lxcri_core.storage.storage_report import StorageReport, ZfsReport


def _size(n: int | None) -> str:
    return "-" if n is None else human_size(n)


def _caps(caps: tuple[str, ...] | None) -> str:
    return "ALL" if caps is None else (",".join(c.lower() for c in caps) or "none")


def network_sections(r: NetworkReport) -> list[Section]:
    cts: list[tuple[str, ...]] = []
    for c in r.containers:
        if c.error:
            cts.append((c.name, str(c.vmid), "", c.error, ""))
        for i in c.interfaces:
            if i["kind"] is None and i["name"] == "lo":
                continue
            routes = " ".join(
                str(x["dst"]) + (f" via {x['gateway']}" if x["gateway"] else "")
                for x in c.routes
                if x["dev"] == i["name"]
            )
            cts.append((c.name, str(c.vmid), i["name"], " ".join(i["addresses"]), routes))
    ovs = "Open vSwitch bridges" + (f" ({r.ovs_error})" if r.ovs_error else "")
    return [
        Section(
            "Linux bridges",
            ("BRIDGE", "STATE", "MTU", "ADDRESSES", "PORTS"),
            tuple(
                (
                    b.name,
                    b.state,
                    str(b.mtu),
                    " ".join(map(str, b.addresses)),
                    " ".join(p.name for p in b.ports),
                )
                for b in r.bridges
            ),
        ),
        Section(
            ovs,
            ("OVS BRIDGE", "DATAPATH", "PORT", "VLAN TAG", "TRUNKS"),
            tuple(
                (b.name, b.datapath_type, p.name, str(p.tag or ""), ",".join(map(str, p.trunks)))
                for b in r.ovs_bridges
                for p in b.ports
            ),
        ),
        Section(
            "Container veths",
            ("VETH", "BRIDGE", "VLAN TAG", "CONTAINER", "IFNAME", "STATE"),
            tuple(
                (
                    v.name,
                    v.bridge or "",
                    str(v.tag or ""),
                    v.container or "",
                    v.container_ifname or "",
                    v.state,
                )
                for v in r.veths
            ),
        ),
        Section(
            "Container addresses",
            ("CONTAINER", "VMID", "IFNAME", "ADDRESSES", "ROUTES"),
            tuple(cts),
        ),
        Section(
            "Published ports",
            ("CONTAINER", "HOST", "CONTAINER PORT", "TO", "SHADOWS"),
            tuple(
                (
                    p.container or p.container_id[:12],
                    f"{p.host_ip or '*'}:{p.host_port}/{p.protocol}",
                    str(p.container_port),
                    p.container_ip,
                    p.shadows or "",
                )
                for p in r.published
            ),
        ),
    ]


def _zfs_tree(z: ZfsReport) -> tuple[Node, ...]:
    layers = {n.dataset: n for n in z.tree.layers}
    clones: dict[str, list[Node]] = {}
    for c in z.tree.clones:
        ratio = "-" if c.compressratio is None else f"{c.compressratio:.2f}x"
        snaps = tuple(Node(f"@{s}") for s in c.snapshots)
        clones.setdefault(c.layer, []).append(
            Node(
                f"{c.dataset}  container {c.container or '-'}  used {_size(c.used)}"
                f"  refer {_size(c.referenced)}  ratio {ratio}",
                snaps,
            )
        )

    def chain(name: str) -> Node:
        n = layers[name]
        above = tuple(chain(a) for a in n.layers_above if a in layers)
        return Node(
            f"{n.dataset}  used {_size(n.used)}  refer {_size(n.referenced)}"
            f"  images {len(n.images)}",
            (*clones.get(name, ()), *above),
        )

    roots = tuple(chain(n.dataset) for n in z.tree.layers if n.parent is None)
    pools = tuple(
        Node(
            f"pool {p.name}  {p.health}  size {_size(p.size)}  free {_size(p.free)}"
            + ("" if p.capacity is None else f"  cap {p.capacity}%"),
            roots if i == 0 else (),
        )
        for i, p in enumerate(z.pools)
    )
    return pools or roots


def storage_view(r: StorageReport, storages: list[Any] | None) -> StorageView:
    tree: tuple[Node, ...] = ()
    prune = "no ZFS layer chains (zfs_pool is not configured)"
    if r.zfs is not None:
        tree = _zfs_tree(r.zfs)
        if r.zfs.prune_root:
            z = r.zfs.prune
            prune = f"a prune would free {_size(z.bytes)} ({len(z.datasets)} layer datasets)"
    elif r.zfs_error:
        tree = (Node(f"ZFS not available: {r.zfs_error}"),)
    sections = [
        Section(
            "Overlay and dir layers",
            ("BACKEND", "KIND", "KEY", "SIZE", "CONTAINERS", "IMAGES"),
            tuple(
                (
                    d.backend,
                    d.kind,
                    d.key.split(":", 1)[-1][:16],
                    _size(d.bytes),
                    ", ".join(d.containers) or "-",
                    str(len(d.images)),
                )
                for d in r.dirs
            ),
        )
    ]
    if storages:
        sections.append(
            Section(
                "Proxmox storages",
                ("STORAGE", "TYPE", "STATUS", "TOTAL", "USED", "AVAIL", "LXCRI VOLUMES"),
                tuple(
                    (
                        s.id,
                        s.type,
                        s.status,
                        _size(s.total),
                        _size(s.used),
                        _size(s.avail),
                        ", ".join(s.volumes) or "-",
                    )
                    for s in storages
                ),
            )
        )
    return StorageView(tree, tuple(sections), prune)


def host_section(f: HostFacts) -> Section:
    cg, sc, un = f.cgroup, f.seccomp, f.userns
    return Section(
        "Host",
        ("FACT", "VALUE", "DETAIL"),
        (
            ("LSMs", ",".join(f.lsms) or "unknown", f"from {f.lsm_source}"),
            ("AppArmor", f.apparmor.state, f.apparmor.detail),
            ("SELinux", f.selinux.state, f.selinux.detail),
            ("cgroup", cg.version, ",".join(cg.v2_controllers or cg.v1_controllers)),
            ("seccomp", "supported" if sc.supported else "unavailable", " ".join(sc.actions)),
            (
                "user namespaces",
                "available" if un.available else "disabled",
                f"max {un.max_user_namespaces}",
            ),
        ),
    )


def container_section(rep: ContainerSecurity) -> Section:
    p = rep.process
    root = "" if rep.host_root_uid is None else f"uid {rep.host_root_uid}"
    return Section(
        f"Container {rep.name} ({rep.vmid})",
        ("ITEM", "VALUE", "DETAIL"),
        (
            ("status", rep.status, f"init pid {rep.pid}" if rep.pid else ""),
            ("unprivileged", "no" if rep.privileged else "yes", "; ".join(rep.idmaps)),
            ("root on the host", root, ""),
            ("capabilities", _caps(rep.capabilities), ""),
            ("init bounding set", _caps(p.bounding) if p else "", ""),
            ("no_new_privs", "yes" if rep.no_new_privileges else "no", ""),
            ("seccomp", rep.seccomp, "" if not p else f"kernel: {p.seccomp}"),
            ("AppArmor", rep.apparmor_profile, rep.apparmor),
            ("SELinux", rep.selinux_context or "-", rep.selinux),
            (
                "nesting",
                "yes" if rep.features.get("nesting") else "no",
                ",".join(f"{k}={int(v)}" for k, v in rep.features.items()),
            ),
        ),
    )


def pve_section(name: str, vmid: int, conf: Mapping[str, Any]) -> Section:
    """A Proxmox CT's security as its configuration states it (pct config)."""
    features = str(conf.get("features", ""))
    raw = tuple(
        (k, str(v), "raw LXC key")
        for k, v in sorted(conf.items())
        if k.startswith(("lxc.apparmor", "lxc.cap", "lxc.seccomp", "lxc.idmap", "lxc.mount"))
    )
    return Section(
        f"Container {name} ({vmid})",
        ("ITEM", "VALUE", "DETAIL"),
        (
            (
                "unprivileged",
                "yes" if str(conf.get("unprivileged", "0")) == "1" else "no",
                "id map: Proxmox's default" if str(conf.get("unprivileged")) == "1" else "",
            ),
            ("nesting", "yes" if "nesting=1" in features else "no", features),
            ("protection", "yes" if str(conf.get("protection", "0")) == "1" else "no", ""),
            *raw,
        ),
    )
