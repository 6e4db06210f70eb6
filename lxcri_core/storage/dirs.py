"""The dir backend: a flattened rootfs directory per container.

Works on any filesystem. ``prepare_image`` flattens the chain once into a
template (``images/<key16>/rootfs``, whiteouts applied as deletions); each
container gets a copy of it (``cp -a --reflink=auto``: hardlinks, devices,
xattrs and ownership kept; a reflinking filesystem shares the blocks).

Layout under ``cfg.root/storage/dir``::

    images/<key16>/rootfs, images/<key16>/meta.json
    containers/<id>/rootfs
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import atomic_write, fsync_dir, syncfs
from lxcri_core.storage.base import PruneResult, StorageBackend, Usage, check_not_mounted
from lxcri_core.storage.chain import ImageChain, short_key
from lxcri_core.storage.cmd import output
from lxcri_core.storage.fstree import (
    TMP,
    disk_usage,
    keyed_dirs,
    remove_renamed,
    remove_tree,
)
from lxcri_core.storage.refs import Refs
from lxcri_core.storage.rootfs import Rootfs

if TYPE_CHECKING:
    from lxcri_core.store.layout import Store


class DirBackend(StorageBackend):
    name = "dir"

    @property
    def images_dir(self) -> Path:
        return self.state / "images"

    def _cleanup_partial(self) -> None:
        self._remove_temporaries(self.images_dir, self.containers_dir)

    def _template(self, key: str) -> Path:
        return self.images_dir / short_key(key)

    def _prepare(self, store: Store, chain: ImageChain) -> None:
        final = self._template(chain.key)
        if final.is_dir():
            return
        from lxcri_core.unpack import WriteLimits, apply_layer  # only to unpack (~10 ms)

        self.images_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.images_dir / (TMP + chain.top.short)
        remove_tree(tmp)
        rootfs = tmp / "rootfs"
        rootfs.mkdir(parents=True)
        os.chmod(rootfs, 0o755)
        if chain.idmap is not None:
            os.chown(rootfs, chain.idmap.host, chain.idmap.host)
        limits = WriteLimits.from_config(self.cfg)
        try:
            for layer in chain.layers:
                with store.open_blob(layer.digest) as src:
                    apply_layer(
                        src,
                        layer.media_type,
                        rootfs,
                        diff_id=layer.diff_id,
                        idmap=chain.idmap,
                        limits=limits,
                    )
        except BaseException:
            remove_tree(tmp)  # now, not at the next operation: the space may be needed
            raise
        meta = {"key": chain.key, "chain": list(chain.keys)}
        atomic_write(tmp / "meta.json", json.dumps(meta).encode())
        syncfs(tmp)
        os.rename(tmp, final)
        fsync_dir(self.images_dir)

    def _has_chain(self, chain: ImageChain) -> bool:
        return self._template(chain.key).is_dir()

    def _rootfs(self, container_id: str, keys: list[str]) -> Rootfs:
        return Rootfs(
            backend=self.name,
            container_id=container_id,
            chain_key=keys[-1],
            path=self.containers_dir / container_id / "rootfs",
        )

    def _create(self, chain: ImageChain, container_id: str) -> Rootfs:
        final = self.containers_dir / container_id
        if final.exists():
            raise StorageError(f"{final} exists but no container owns it; remove it by hand")
        tmp = self.containers_dir / (TMP + container_id)
        remove_tree(tmp)
        tmp.mkdir(parents=True)
        src = self._template(chain.key) / "rootfs"
        output(["cp", "-a", "--reflink=auto", str(src), str(tmp / "rootfs")])
        syncfs(tmp)
        os.rename(tmp, final)
        fsync_dir(self.containers_dir)
        return self._rootfs(container_id, list(chain.keys))

    def _remove(self, rootfs: Rootfs) -> None:
        cdir = self.containers_dir / rootfs.container_id
        check_not_mounted(cdir, f"rootfs of container {rootfs.container_id}")
        remove_renamed(cdir)

    def _templates(self) -> dict[str, Path]:
        return keyed_dirs(self.images_dir)

    def _usage(self, refs: Refs) -> list[Usage]:
        users: dict[str, int] = {}
        for c in refs.containers.values():
            users[c.chain[-1]] = users.get(c.chain[-1], 0) + 1
        out = [
            Usage("image", key, disk_usage(p), str(p), users.get(key, 0))
            for key, p in self._templates().items()
        ]
        for cid in sorted(refs.containers):
            cdir = self.containers_dir / cid
            out.append(Usage("container", cid, disk_usage(cdir), str(cdir)))
        return out

    def _prune(self, keep: set[str], result: PruneResult) -> None:
        # Containers are full copies: only templates of images no one keeps go.
        for key, p in self._templates().items():
            if key in keep:
                result.kept += 1
                continue
            result.freed_bytes += disk_usage(p)
            remove_renamed(p)
            result.removed.append(key)
