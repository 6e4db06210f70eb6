"""The zfs backend: a dataset per layer chain, a clone per container.

Datasets below ``cfg.zfs_pool`` (e.g. ``rpool/data``)::

    <pool>/lxcri/layers/<key16>        layer chain; @layer is its snapshot
    <pool>/subvol-<vmid>-disk-0        a container rootfs (numeric id), as
                                       Proxmox's zfspool storage names it
    <pool>/lxcri/containers/<id>       a container rootfs (any other id)

The first layer is unpacked into a new dataset; each next one into a clone of
the previous ``@layer`` snapshot; a container is a clone of the top snapshot,
so it costs nothing until it writes. Layers are built as ``tmp-<key16>``,
snapshotted, unmounted (zfs-fuse cannot rename a mounted dataset) and then
renamed: a dataset under its final name is always complete. Finished layers
stay unmounted (``canmount=noauto``): clones do not need their origin
mounted. ``lz4`` compression is used where the pool accepts it, else ``on``
(lzjb; zfs-fuse's pool version 23 has no lz4). zfs-fuse has no xattrs, so a
layer carrying file capabilities or other xattrs cannot be unpacked there.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import syncfs
from lxcri_core.log import get_logger
from lxcri_core.storage.base import PruneResult, StorageBackend, Usage
from lxcri_core.storage.chain import ImageChain, short_key
from lxcri_core.storage.refs import Refs
from lxcri_core.storage.rootfs import Rootfs
from lxcri_core.storage.zfscli import (
    Dataset,
    exists,
    get_prop,
    names,
    parse_zfs_get,
    zfs,
    zfs_get_space_cmd,
)

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.store.layout import Store

log = get_logger(__name__)

TMP = "tmp-"
SNAP = "layer"
KEY_PROP = "lxcri:key"  # full chain key, a user property on each layer dataset
#: the layer's diff_id, next to its key: a node receiving the dataset by zfs
#: replication (lxcri_core.cluster) checks both before it uses it
DIFF_ID_PROP = "lxcri:diff_id"


class ZfsBackend(StorageBackend):
    name = "zfs"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        pool = cfg.zfs_pool.strip("/")
        if not pool:
            raise StorageError(
                "the zfs storage backend needs zfs_pool in the config (e.g. rpool/data)"
            )
        self.pool = pool
        self.base = f"{pool}/lxcri"
        self.layers = f"{self.base}/layers"
        self.cts = f"{self.base}/containers"

    # -- datasets ----------------------------------------------------------------
    def _layer_ds(self, key: str) -> str:
        return f"{self.layers}/{short_key(key)}"

    def container_dataset(self, container_id: str) -> str:
        """``<pool>/subvol-<vmid>-disk-0`` for a Proxmox VMID (``VMID-disk-N``: its
        volume N, a generation an upgrade built), else under lxcri/containers."""
        if container_id.isdigit():
            return f"{self.pool}/subvol-{int(container_id)}-disk-0"
        if m := re.fullmatch(r"(\d+)-disk-(\d+)", container_id):
            return f"{self.pool}/subvol-{int(m.group(1))}-disk-{int(m.group(2))}"
        return f"{self.cts}/{container_id}"

    def _ensure_base(self) -> None:
        if exists(self.layers) and exists(self.cts):
            self._private_base()
            return
        if not exists(self.pool):
            raise StorageError(
                f"zfs dataset {self.pool} does not exist; create the pool or fix zfs_pool "
                "in the config"
            )
        if not exists(self.base):
            zfs("create", "-p", self.base)
            try:
                zfs("set", "compression=lz4", self.base)
            except StorageError:
                zfs("set", "compression=on", self.base)
                log.info("pool lacks lz4, using lzjb", dataset=self.base)
        for ds in (self.layers, self.cts):
            if not exists(ds):
                zfs("create", "-p", ds)
        self._private_base()

    def _private_base(self) -> None:
        """Layers and clones are mounted below the base: only root may pass.

        A privileged image's setuid binaries are in its layers, and a layer
        dataset is mounted while it is unpacked; containers reach their clone
        through a bind mount in their state dir (containers.private).
        """
        for ds in (self.base, self.layers, self.cts):
            mnt = get_prop(ds, "mountpoint")
            if mnt.startswith("/") and os.path.isdir(mnt) and os.stat(mnt).st_mode & 0o077:
                os.chmod(mnt, 0o700)

    @property
    def compression(self) -> str:
        """The compression the layer datasets get (``lz4``, or ``on`` = lzjb)."""
        return get_prop(self.base, "compression")

    def _cleanup_partial(self) -> None:
        for name in names(self.layers):
            leaf = name.rsplit("/", 1)[-1]
            if "@" not in name and leaf.startswith(TMP):
                log.warning("removing half-built layer", dataset=name)
                destroy(name)

    # -- layers ------------------------------------------------------------------
    def _prepare(self, store: Store, chain: ImageChain) -> None:
        from lxcri_core.unpack import WriteLimits, apply_layer

        self._ensure_base()
        present = set(names(self.layers))
        parent: str | None = None
        for layer in chain.layers:
            final = self._layer_ds(layer.key)
            if f"{final}@{SNAP}" in present:
                # one line per property; a value with a newline in it is no match
                got = zfs("get", "-H", "-o", "value", f"{KEY_PROP},{DIFF_ID_PROP}", final)
                lines = got.splitlines()
                key, diff_id = lines if len(lines) == 2 else ("", "")
                # "-": a layer unpacked before lxcri set its diff_id
                if key != layer.key or diff_id not in ("-", layer.diff_id):
                    raise StorageError(
                        f"dataset {final} holds layer {key or '?'} (diff_id {diff_id or '?'}), "
                        f"not {layer.key}; destroy it (zfs destroy -r {final}) and prepare again"
                    )
                parent = final
                continue
            tmp = f"{self.layers}/{TMP}{layer.short}"
            if tmp in present:
                destroy(tmp)
            props = ["-o", f"{KEY_PROP}={layer.key}", "-o", f"{DIFF_ID_PROP}={layer.diff_id}"]
            if parent is None:
                zfs("create", *props, tmp)
            else:
                zfs("clone", *props, f"{parent}@{SNAP}", tmp)
            try:
                mnt = Path(get_prop(tmp, "mountpoint"))
                if parent is None:
                    mnt.chmod(0o755)
                    if chain.idmap is not None:
                        os.chown(mnt, chain.idmap.host, chain.idmap.host)
                with store.open_blob(layer.digest) as src:
                    apply_layer(
                        src,
                        layer.media_type,
                        mnt,
                        diff_id=layer.diff_id,
                        idmap=chain.idmap,
                        limits=WriteLimits.from_config(self.cfg),
                    )
                syncfs(mnt)
                zfs("snapshot", f"{tmp}@{SNAP}")
                zfs_settled("umount", tmp)
                zfs("set", "canmount=noauto", tmp)
                zfs_settled("rename", tmp, final)
            except BaseException:
                with contextlib.suppress(StorageError):
                    destroy(tmp)
                raise
            parent = final

    def _has_chain(self, chain: ImageChain) -> bool:
        present = set(names(self.layers))
        return all(f"{self._layer_ds(k)}@{SNAP}" in present for k in chain.keys)

    # -- containers ----------------------------------------------------------------
    def _rootfs(self, container_id: str, keys: list[str]) -> Rootfs:
        ds = self.container_dataset(container_id)
        mnt = get_prop(ds, "mountpoint") if exists(ds) else ""
        return Rootfs(
            backend=self.name,
            container_id=container_id,
            chain_key=keys[-1],
            path=Path(mnt),
            dataset=ds,
        )

    def _create(self, chain: ImageChain, container_id: str) -> Rootfs:
        ds = self.container_dataset(container_id)
        if exists(ds):
            raise StorageError(
                f"dataset {ds} exists but no lxcri container owns it; destroy it or pick another id"
            )
        # A clone is atomic: it exists complete or not at all.
        zfs("clone", f"{self._layer_ds(chain.key)}@{SNAP}", ds)
        if get_prop(ds, "mounted") != "yes":
            zfs("mount", ds)
        return self._rootfs(container_id, list(chain.keys))

    def _remove(self, rootfs: Rootfs) -> None:
        assert rootfs.dataset is not None
        if exists(rootfs.dataset):
            destroy(rootfs.dataset)

    # -- usage and prune -------------------------------------------------------------
    def _space(self, roots: list[str], recursive: bool) -> list[Dataset]:
        roots = [r for r in roots if exists(r)]
        if not roots:
            return []
        cmd = zfs_get_space_cmd(roots[0])
        if not recursive:
            cmd.remove("-r")
        return parse_zfs_get(zfs(*cmd[1:-1], *roots))

    def _layer_keys(self) -> dict[str, str]:
        """Layer dataset -> its full chain key (complete layers only)."""
        if not exists(self.layers):
            return {}
        text = zfs("get", "-H", "-r", "-o", "name,value", KEY_PROP, self.layers)
        out: dict[str, str] = {}
        seen: set[str] = set()
        for line in text.splitlines():
            # A value may hold newlines (anyone ``zfs allow``ed to set it), so a line
            # may be forged: only a layer's own name is taken, a name printed twice is
            # trusted with no key, and the key must be the one the name says.
            name, _, value = line.partition("\t")
            parent, _, leaf = name.rpartition("/")
            if parent != self.layers or "@" in leaf or leaf.startswith(TMP):
                continue
            if name in seen:
                out.pop(name, None)
                continue
            seen.add(name)
            out[name] = value if short_key(value) == leaf else leaf
        return out

    def _usage(self, refs: Refs) -> list[Usage]:
        keys = self._layer_keys()
        out = []
        for d in self._space([self.layers], recursive=True):
            if d.name in keys:
                key = keys[d.name]
                out.append(Usage("layer", key, d.used, d.name, refs.users(key)))
        cts = {self.container_dataset(cid): cid for cid in refs.containers}
        for d in self._space(sorted(cts), recursive=False):
            out.append(Usage("container", cts[d.name], d.used, d.name))
        out.sort(key=lambda u: (u.kind != "layer", u.name))
        return out

    def _prune(self, keep: set[str], result: PruneResult) -> None:
        keys = self._layer_keys()
        space = {d.name: d for d in self._space([self.layers], recursive=True)}
        doomed = {ds for ds, key in keys.items() if key not in keep}
        result.kept = len(keys) - len(doomed)
        # A layer's snapshot is the origin of the next layer's clone: destroy
        # from the top of each chain down.
        while doomed:
            origins = {
                (d.origin or "").split("@")[0] for d in space.values() if d.type == "filesystem"
            }
            leaves = sorted(ds for ds in doomed if ds not in origins)
            if not leaves:
                log.warning("layers still have dependent clones", datasets=sorted(doomed))
                break
            for ds in leaves:
                try:
                    destroy(ds)
                except StorageError as e:
                    log.warning("cannot destroy layer", dataset=ds, error=str(e))
                else:
                    result.freed_bytes += space[ds].used if ds in space else 0
                    result.removed.append(keys[ds])
                doomed.discard(ds)
                space.pop(ds, None)


def zfs_settled(*args: str, attempts: int = 20) -> str:
    """``zfs ARGS``, retried while zfs-fuse reports the dataset busy.

    Right after a zfs-fuse dataset was mounted, written, or (bind-)unmounted,
    the daemon holds it for a moment and destroy/rename/umount say "dataset
    is busy"; something really using it stays busy and the last error is
    raised.
    """
    import time

    for i in range(attempts):
        try:
            return zfs(*args)
        except StorageError as e:
            if "busy" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.1 * (i + 1))
    raise AssertionError("unreachable")


def destroy(dataset: str) -> None:
    zfs_settled("destroy", "-r", dataset)
