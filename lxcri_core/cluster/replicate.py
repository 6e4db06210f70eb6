"""Layer-chain replication: give a node the zfs layer datasets it lacks, from another node.

The zfs backend keeps an image as a clone tree (lxcri_core.storage.zfs):
``<pool>/lxcri/layers/<key16>`` per layer, each a clone of its parent's
``@layer`` snapshot, carrying ``lxcri:key`` and ``lxcri:diff_id``. Sending a
chain sends only the layers the receiver lacks, bottom up, each as the
incremental stream from its parent's snapshot (``zfs send -i parent@layer
child@layer``; the bottom layer whole), so the receiver ends with the same
clone tree and the same snapshot guids.

Each stream is received as ``tmp-recv-<key16>`` (the ``tmp-`` names the zfs
backend never uses as a layer and removes as half-built), checked (its
snapshot's guid is the sender's, its properties name the expected key and
diff_id, its origin is the parent layer) and only then renamed to its final
name: a dataset under a layer's final name is always complete. A kill -9 of
either side at any moment leaves at most a ``tmp-recv-`` dataset, which the
next attempt destroys before it receives again.

A layer the receiver already holds under its final name is used only if its
properties and origin match the chain; otherwise, or when the receiver
built a layer itself (its snapshot guid differs, so nothing can be sent
incrementally on top of it), the result says to fall back to a pull: the
node's layer is never replaced or used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxcri_core.cluster.transport import Node, pump
from lxcri_core.errors import StorageError
from lxcri_core.log import get_logger
from lxcri_core.storage.chain import ChainLayer, ImageChain, short_key
from lxcri_core.storage.cmd import output
from lxcri_core.storage.zfs import DIFF_ID_PROP, KEY_PROP, SNAP, TMP

if TYPE_CHECKING:
    from collections.abc import Sequence

log = get_logger(__name__)

RECV = f"{TMP}recv-"
#: the properties read of each layer dataset and its snapshot
PROPS = (KEY_PROP, DIFF_ID_PROP, "origin", "guid")


@dataclass(frozen=True)
class Side:
    """One node's zfs backend: the node and its ``zfs_pool`` (as in its config)."""

    node: Node
    pool: str

    @property
    def layers(self) -> str:
        return f"{self.pool.strip('/')}/lxcri/layers"

    def layer(self, key: str, tmp: bool = False) -> str:
        return f"{self.layers}/{RECV if tmp else ''}{short_key(key)}"

    def zfs(self, *args: str) -> str:
        return output(["zfs", *args], self.node)


@dataclass
class Replication:
    """What ``replicate_chain`` did.

    ``fallback`` is None when the receiver now holds the whole chain; else
    why it must pull the image itself (nothing of it was used or replaced).
    """

    sent: list[str] = field(default_factory=list)  # chain keys received, bottom up
    present: list[str] = field(default_factory=list)  # chain keys the receiver had
    wire_bytes: int = 0
    stream_bytes: int = 0  # what ``zfs send`` wrote (before compression)
    seconds: float = 0.0
    fallback: str | None = None

    @property
    def complete(self) -> bool:
        return self.fallback is None


def read_props(side: Side) -> dict[str, dict[str, str]]:
    """``{dataset or snapshot: {property: value}}`` below the side's layers ({} if none).

    A user property's value may hold newlines, so a forged line may name
    another dataset: a (name, property) pair printed twice is dropped, and
    a check then finds the property missing.
    """
    try:
        text = side.zfs("get", "-Hp", "-r", "-o", "name,property,value", ",".join(PROPS),
                        side.layers)  # fmt: skip
    except StorageError as e:
        if "does not exist" in str(e):
            return {}
        raise
    out: dict[str, dict[str, str]] = {}
    twice: set[tuple[str, str]] = set()
    for line in text.splitlines():
        name, _, rest = line.partition("\t")
        prop, _, value = rest.partition("\t")
        if prop not in PROPS:
            continue
        got = out.setdefault(name, {})
        if prop in got:
            twice.add((name, prop))
        got[prop] = value
    for name, prop in twice:
        out[name].pop(prop, None)
    return out


def mismatch(
    props: dict[str, dict[str, str]], ds: str, layer: ChainLayer, origin: str | None
) -> str | None:
    """Why dataset ``ds`` is not ``layer`` on top of ``origin`` (None: it is)."""
    mine = props.get(ds, {})
    if f"{ds}@{SNAP}" not in props:
        return f"{ds} has no @{SNAP} snapshot"
    for prop, want in ((KEY_PROP, layer.key), (DIFF_ID_PROP, layer.diff_id)):
        if mine.get(prop) != want:
            return f"{ds} has {prop}={mine.get(prop, '?')!r}, not {want!r}"
    if mine.get("origin", "?") != (origin or "-"):
        return f"{ds} is a clone of {mine.get('origin', '?')!r}, not of {origin or 'nothing'!r}"
    return None


def _guid(props: dict[str, dict[str, str]], ds: str) -> str | None:
    return props.get(f"{ds}@{SNAP}", {}).get("guid")


def _snap(ds: str | None) -> str | None:
    return None if ds is None else f"{ds}@{SNAP}"


def check_source(src: Side, chain: ImageChain, props: dict[str, dict[str, str]]) -> None:
    """The sender holds the whole chain, and its layers say what they are.

    Layers unpacked before the zfs backend set ``lxcri:diff_id`` get it here:
    their key is the chain id over the diff_ids, so a matching key pins it.
    """
    parent: str | None = None
    for layer in chain.layers:
        ds = src.layer(layer.key)
        if f"{ds}@{SNAP}" not in props:
            raise StorageError(
                f"{src.node.name} lacks layer {layer.key} ({ds}); prepare the image there first"
            )
        if props[ds].get(DIFF_ID_PROP) == "-" and props[ds].get(KEY_PROP) == layer.key:
            src.zfs("set", f"{DIFF_ID_PROP}={layer.diff_id}", ds)
            props[ds][DIFF_ID_PROP] = props[f"{ds}@{SNAP}"][DIFF_ID_PROP] = layer.diff_id
        why = mismatch(props, ds, layer, _snap(parent))
        if why:
            raise StorageError(f"{src.node.name}: {why}; destroy it and prepare the image again")
        parent = ds


def replicate_chain(
    chain: ImageChain,
    src: Side,
    dst: Side,
    bwlimit: int | None = None,
    compress: bool = True,
) -> Replication:
    """Give ``dst`` the layers of ``chain`` it lacks, from ``src``.

    Raises StorageError when the sender lacks the chain or a stream fails
    (try again: a failed attempt leaves nothing in use); returns a
    ``Replication`` whose ``fallback`` says why ``dst`` must pull instead
    when its own datasets do not match.
    """
    sprops = read_props(src)
    check_source(src, chain, sprops)
    result = Replication()
    _ensure_layers(dst)
    dprops = read_props(dst)
    _remove_leftovers(dst, dprops)
    todo: list[int] = []
    for i, layer in enumerate(chain.layers):
        ds = dst.layer(layer.key)
        parent = _snap(dst.layer(chain.layers[i - 1].key)) if i else None
        if ds not in dprops:
            todo.append(i)
            continue
        why = mismatch(dprops, ds, layer, parent)
        if why is None and todo:
            why = f"{ds} is present but the layer below it is not"
        if why:
            log.warning("replicated layer refused", node=dst.node.name, reason=why)
            result.fallback = f"{dst.node.name}: {why}"
            return result
        result.present.append(layer.key)
    if not todo:
        return result
    first = todo[0]
    if first:
        below = chain.layers[first - 1].key
        if _guid(dprops, dst.layer(below)) != _guid(sprops, src.layer(below)):
            # built on dst itself: nothing from src applies on top of it
            result.fallback = (
                f"{dst.node.name} unpacked layer {below} itself; pull the layers above it"
            )
            return result
    for i in todo:
        why = _receive(chain, i, src, dst, sprops, bwlimit, compress, result)
        if why:
            result.fallback = f"{dst.node.name}: {why}"
            return result
        result.sent.append(chain.layers[i].key)
    return result


def _ensure_layers(side: Side) -> None:
    """Create ``<pool>/lxcri/layers`` as the zfs backend does (compressed, root only)."""
    from lxcri_core.storage.zfscli import exists

    if exists(side.layers, side.node):
        return
    base = side.layers.rsplit("/", 1)[0]
    side.zfs("create", "-p", side.layers)
    try:
        side.zfs("set", "compression=lz4", base)
    except StorageError:
        side.zfs("set", "compression=on", base)  # zfs-fuse: no lz4
    mnt = side.zfs("get", "-H", "-o", "value", "mountpoint", base).strip()
    if mnt.startswith("/"):
        side.node(["chmod", "0700", mnt])


def _remove_leftovers(dst: Side, props: dict[str, dict[str, str]]) -> None:
    """Destroy what an interrupted receive left (``tmp-recv-*``)."""
    for name in sorted(props):
        leaf = name.rsplit("/", 1)[-1]
        if "@" not in name and leaf.startswith(RECV) and name.rsplit("/", 1)[0] == dst.layers:
            log.warning("removing half-received layer", node=dst.node.name, dataset=name)
            _settled(dst, "destroy", "-r", name)
            del props[name]


def _receive(
    chain: ImageChain,
    i: int,
    src: Side,
    dst: Side,
    sprops: dict[str, dict[str, str]],
    bwlimit: int | None,
    compress: bool,
    result: Replication,
) -> str | None:
    """Receive layer ``i``; None when it is in place, else why it was refused."""
    layer = chain.layers[i]
    below = chain.layers[i - 1].key if i else None
    send = ["zfs", "send", "-p"]
    if below is not None:
        send += ["-i", f"{src.layer(below)}@{SNAP}"]
    send.append(f"{src.layer(layer.key)}@{SNAP}")
    tmp = dst.layer(layer.key, tmp=True)
    try:
        streamed = pump(src.node, send, dst.node, ["zfs", "recv", tmp], bwlimit, compress)
    except StorageError:
        _destroy_quietly(dst, tmp)
        raise
    result.wire_bytes += streamed.bytes
    result.stream_bytes += streamed.stream_bytes
    result.seconds += streamed.seconds
    props = read_props(dst)
    why = mismatch(props, tmp, layer, _snap(dst.layer(below)) if below else None)
    if why is None and _guid(props, tmp) != _guid(sprops, src.layer(layer.key)):
        why = f"{tmp}@{SNAP} is not the snapshot {src.node.name} sent"
    if why:
        log.warning("received layer refused", node=dst.node.name, reason=why)
        _destroy_quietly(dst, tmp)
        return why
    # zfs-fuse cannot rename a mounted dataset; finished layers stay unmounted
    _settled(dst, "umount", tmp, ok_if="not currently mounted")
    dst.zfs("set", "canmount=noauto", tmp)
    _settled(dst, "rename", tmp, dst.layer(layer.key))
    log.info("layer received", node=dst.node.name, key=layer.key, bytes=streamed.bytes)
    return None


def _destroy_quietly(dst: Side, ds: str) -> None:
    try:
        _settled(dst, "destroy", "-r", ds, ok_if="does not exist")
    except StorageError as e:
        # the next attempt removes it (_remove_leftovers)
        log.warning("cannot remove half-received layer", dataset=ds, error=str(e))


def _settled(side: Side, *args: str, ok_if: str | None = None, attempts: int = 20) -> None:
    """``zfs ARGS`` on the side's node, retried while zfs-fuse says "busy" (see zfs_settled)."""
    import time

    for n in range(attempts):
        try:
            side.zfs(*args)
            return
        except StorageError as e:
            if ok_if is not None and ok_if in str(e):
                return
            if "busy" not in str(e) or n == attempts - 1:
                raise
            time.sleep(0.1 * (n + 1))


def chain_on(side: Side, keys: Sequence[str]) -> list[str]:
    """The keys of ``keys`` whose layer ``side`` holds under its final name."""
    props = read_props(side)
    return [k for k in keys if f"{side.layer(k)}@{SNAP}" in props]
