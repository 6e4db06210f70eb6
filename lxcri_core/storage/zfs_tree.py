"""What lxcri built on ZFS, read from one dataset listing: layer chains, the
containers cloned from them, who holds each chain, and what a prune would free.

lxcri's layout (lxcri_core.storage.zfs): a layer is ``<root>/lxcri/layers/<key16>``
with its ``@layer`` snapshot; the next layer is a clone of that snapshot; a
container is a clone of its top layer's snapshot, named
``<root>/subvol-<VMID>-disk-<N>`` (Proxmox's zfspool) or
``<root>/lxcri/containers/<id>``. A container's own snapshots (Proxmox's
``pct snapshot``) and clones of those (linked clones) hold the chain too:
ZFS will not destroy a snapshot while a clone of it exists. The tree is
followed by ``origin`` only, so what PVE or an admin cloned is found as well.

Pure functions of ``ZDataset`` lists; sizes are ZFS's own ``used`` figures.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxcri_core.storage.chain import short_key
from lxcri_core.storage.zfs_inspect import ZDataset

LAYERS_DIR = "/lxcri/layers/"
TMP = "tmp-"  # a half-built layer (lxcri_core.storage.zfs.TMP)
_SUBVOL = re.compile(r"(?:subvol|basevol)-(\d+)-disk-\d+")


def layer_key(ds: ZDataset, full: Mapping[str, str] | None = None) -> str | None:
    """The chain key of a finished lxcri layer dataset: the full key ``full`` (short ->
    full, from lxcri's registry) has for its 16-hex name, else that name; None for a
    dataset that is no layer."""
    if ds.type != "filesystem":
        return None
    parent, _, leaf = ds.name.rpartition("/")
    if not parent.endswith(LAYERS_DIR.rstrip("/")) or leaf.startswith(TMP):
        return None
    return (full or {}).get(leaf, leaf)


def full_keys(keys: Iterable[str]) -> dict[str, str]:
    """short name -> full chain key, for the keys lxcri's registry knows."""
    return {short_key(k): k for k in keys}


def container_id(name: str) -> str | None:
    """The container a dataset is the rootfs of: the VMID of ``.../subvol-VMID-disk-N``,
    the id of ``.../lxcri/containers/ID``; None for other datasets."""
    parent, _, leaf = name.partition("@")[0].rpartition("/")
    if m := _SUBVOL.fullmatch(leaf):
        return m.group(1)
    if parent.endswith("/lxcri/containers"):
        return leaf
    return None


@dataclass(frozen=True)
class Holder:
    """A dataset that keeps a layer's snapshot alive: a clone, or a snapshot of one."""

    dataset: str
    type: str
    container: str | None  # VMID or container id, where the name says
    origin: str | None
    used: int
    referenced: int
    written: int | None


@dataclass(frozen=True)
class LayerNode:
    dataset: str
    key: str  # full chain key (from lxcri's registry), else the 16-hex name
    parent: str | None  # the layer below (its dataset)
    depth: int  # 0 for a bottom layer
    used: int
    referenced: int
    compressratio: float | None
    layers_above: tuple[str, ...]  # layers cloned from this one
    clones: tuple[str, ...]  # non-layer datasets cloned straight from this layer
    holders: tuple[Holder, ...]  # the clones of this layer (not of a layer above it),
    # their clones and the snapshots of all these: what keeps this very snapshot
    containers: tuple[str, ...]  # every container dataset on this chain, also those
    # cloned from a layer above it
    images: tuple[str, ...] = ()  # image manifests lxcri keeps this chain for
    ref_containers: tuple[str, ...] = ()  # containers lxcri's registry records on it


@dataclass(frozen=True)
class CloneNode:
    """A container's (or any other) clone descending from an lxcri layer."""

    dataset: str
    container: str | None
    origin: str
    layer: str  # the layer dataset it descends from (through other clones too)
    chain: tuple[str, ...]  # that layer's chain, bottom layer first
    used: int
    referenced: int
    written: int | None
    compressratio: float | None
    snapshots: tuple[str, ...]


@dataclass(frozen=True)
class PruneEstimate:
    datasets: tuple[str, ...]  # layer datasets a prune would destroy, top first
    bytes: int  # the sum of their ``used``
    blocked: tuple[str, ...]  # unused layers a clone still holds (prune leaves them)


@dataclass(frozen=True)
class ZfsTree:
    layers: tuple[LayerNode, ...]
    clones: tuple[CloneNode, ...]


def build_tree(
    datasets: Iterable[ZDataset],
    images: Mapping[str, Iterable[str]] | None = None,
    ref_containers: Mapping[str, Iterable[str]] | None = None,
) -> ZfsTree:
    """The layer chains and their clones. ``images`` / ``ref_containers`` map a chain key
    to what lxcri's registry (refs.json) records on it."""
    by_name = {d.name: d for d in datasets}
    full = full_keys(
        [k for ks in (images or {}).values() for k in ks]
        + [k for ks in (ref_containers or {}).values() for k in ks]
    )
    keys = {d.name: k for d in by_name.values() if (k := layer_key(d, full)) is not None}
    children: dict[str, list[str]] = {}  # filesystem -> filesystems cloned from its snapshots
    snaps: dict[str, list[str]] = {}
    for d in by_name.values():
        if d.type == "snapshot":
            snaps.setdefault(d.filesystem, []).append(d.name)
        elif d.origin:
            children.setdefault(d.origin.partition("@")[0], []).append(d.name)

    def parent_of(name: str) -> str | None:
        d = by_name.get(name)
        return d.origin.partition("@")[0] if d and d.origin else None

    def below(name: str) -> tuple[str, ...]:
        """The chain of layers under a layer, bottom first (cycle-safe)."""
        out: list[str] = []
        cur: str | None = name
        while cur is not None and cur in keys and cur not in out:
            out.append(cur)
            cur = parent_of(cur)
        return tuple(reversed(out))

    def descendants(name: str, through_layers: bool) -> list[str]:
        """Non-layer filesystems/volumes cloned from ``name`` at any depth, breadth
        first; through the layers above it too, or only up to them."""
        out: list[str] = []
        seen = {name}
        todo = deque(children.get(name, []))
        while todo:
            cur = todo.popleft()
            if cur in seen or (cur in keys and not through_layers):
                continue
            seen.add(cur)
            if cur not in keys:
                out.append(cur)
            todo.extend(children.get(cur, []))
        return out

    cids: dict[str, str | None] = {}

    def cid_of(name: str) -> str | None:
        if name not in cids:
            cids[name] = container_id(name)
        return cids[name]

    def holder(name: str) -> Holder:
        d = by_name[name]
        return Holder(
            name, d.type, container_id(d.filesystem), d.origin, d.used, d.referenced, d.written
        )

    image_of, ct_of = _inverse(images or {}), _inverse(ref_containers or {})
    layers = []
    clones = []
    for name in sorted(keys, key=lambda n: (len(below(n)), n)):
        d = by_name[name]
        chain = below(name)
        desc = descendants(name, through_layers=True)
        direct = descendants(name, through_layers=False)
        held = [h for fs in direct for h in (fs, *sorted(snaps.get(fs, [])))]
        key = keys[name]
        layers.append(
            LayerNode(
                name,
                key,
                chain[-2] if len(chain) > 1 else None,
                len(chain) - 1,
                d.used,
                d.referenced,
                d.compressratio,
                tuple(sorted(c for c in children.get(name, []) if c in keys)),
                tuple(sorted(c for c in children.get(name, []) if c not in keys)),
                tuple(holder(h) for h in held),
                tuple(fs for fs in desc if cid_of(fs) is not None),
                tuple(sorted(image_of.get(key, ()))),
                tuple(sorted(ct_of.get(key, ()))),
            )
        )
        for fs in direct:
            c = by_name[fs]
            clones.append(
                CloneNode(
                    fs,
                    container_id(fs),
                    c.origin or "",
                    name,
                    chain,
                    c.used,
                    c.referenced,
                    c.written,
                    c.compressratio,
                    tuple(sorted(snaps.get(fs, []))),
                )
            )
    return ZfsTree(tuple(layers), tuple(sorted(clones, key=lambda c: c.dataset)))


def _inverse(m: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """{holder: keys} -> {key: holders}."""
    out: dict[str, set[str]] = {}
    for holder, keys in m.items():
        for k in keys:
            out.setdefault(k, set()).add(holder)
    return out


def prune_estimate(
    datasets: Iterable[ZDataset], keep: set[str], root: str | None = None
) -> PruneEstimate:
    """What ``ZfsBackend.prune`` would destroy: layers (below ``root``'s
    ``lxcri/layers`` only, when given) whose key is not in ``keep``, from the top of
    each chain down, stopping at a layer some clone (anywhere) still needs."""
    by_name = {d.name: d for d in datasets}
    full = full_keys(keep)
    within = None if root is None else f"{root}/lxcri/layers/"
    keys = {
        d.name: k
        for d in by_name.values()
        if (k := layer_key(d, full)) is not None and (within is None or d.name.startswith(within))
    }
    doomed = {ds for ds, key in keys.items() if key not in keep}
    alive = {n for n, d in by_name.items() if d.type != "snapshot"}
    gone: list[str] = []
    while doomed:
        origins = {(by_name[n].origin or "").partition("@")[0] for n in alive}
        leaves = sorted(ds for ds in doomed if ds not in origins)
        if not leaves:
            break
        gone.extend(leaves)
        doomed.difference_update(leaves)
        alive.difference_update(leaves)
    return PruneEstimate(tuple(gone), sum(by_name[n].used for n in gone), tuple(sorted(doomed)))
