"""The overlay backend: one directory per layer, shared; an overlay per container.

Layout under ``cfg.root/storage/overlay``::

    layers/<key16>/diff        the layer, whiteouts in overlay form (0/0 char
                               devices, trusted.overlay.opaque=y)
    layers/<key16>/meta.json   its full chain key, chain id and diff id
    containers/<id>/upper      the container's writes
    containers/<id>/work       overlay's work dir
    containers/<id>/merged     default mount point

A container's rootfs is ``lowerdir=<top>/diff:...:<bottom>/diff`` plus its
upper and work dirs, so twenty containers of one image add twenty empty
upper dirs and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import atomic_write, fsync_dir, syncfs
from lxcri_core.storage.base import PruneResult, StorageBackend, Usage, check_not_mounted
from lxcri_core.storage.chain import ChainLayer, ImageChain, short_key
from lxcri_core.storage.fstree import (
    TMP,
    disk_usage,
    keyed_dirs,
    remove_renamed,
    remove_tree,
)
from lxcri_core.storage.refs import Refs
from lxcri_core.storage.rootfs import Rootfs, is_mountpoint

if TYPE_CHECKING:
    from lxcri_core.store.layout import Store

_probe_cache: dict[str, bool] = {}


def overlay_supported(scratch: Path) -> bool:
    """Whether the kernel lists overlay and a test mount under ``scratch`` works.

    The answer holds until the next boot, so it is kept in ``scratch`` keyed
    by the boot id: the probe mount costs ~80 ms on every create otherwise.
    """
    if "result" in _probe_cache:
        return _probe_cache["result"]
    cache = scratch / "overlay-probe"
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        cached_boot, _, cached = cache.read_text().partition(" ")
        if boot and cached_boot == boot:
            _probe_cache["result"] = cached.strip() == "1"
            return _probe_cache["result"]
    except OSError:
        pass
    ok = False
    try:
        with open("/proc/filesystems") as f:
            listed = any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        listed = False
    if listed:
        from lxcri_core import mountsys

        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix=".probe-") as d:
            p = Path(d)
            for sub in ("l", "u", "w", "m"):
                (p / sub).mkdir()
            try:
                mountsys.overlay([p / "l"], p / "u", p / "w", p / "m")
                mountsys.umount(p / "m")
                ok = True
            except StorageError:
                ok = False
    _probe_cache["result"] = ok
    if boot:
        with contextlib.suppress(OSError):
            atomic_write(cache, f"{boot} {int(ok)}".encode())
    return ok


class OverlayBackend(StorageBackend):
    name = "overlay"

    @property
    def layers_dir(self) -> Path:
        return self.state / "layers"

    def _cleanup_partial(self) -> None:
        self._remove_temporaries(self.layers_dir, self.containers_dir)

    def _layer_dir(self, key: str) -> Path:
        return self.layers_dir / short_key(key)

    def _check_layer(self, final: Path, layer: ChainLayer) -> bool:
        if not final.is_dir():
            return False
        try:
            meta = json.loads((final / "meta.json").read_bytes())
        except (OSError, ValueError):
            meta = {}
        if meta.get("key") != layer.key:
            raise StorageError(
                f"layer directory {final} holds {meta.get('key')!r}, not {layer.key}; "
                "remove it and prepare the image again"
            )
        return True

    def _prepare(self, store: Store, chain: ImageChain) -> None:
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        for layer in chain.layers:
            final = self._layer_dir(layer.key)
            if self._check_layer(final, layer):
                continue
            from lxcri_core.unpack import WriteLimits, apply_layer  # only to unpack (~10 ms)

            tmp = self.layers_dir / (TMP + layer.short)
            remove_tree(tmp)
            (tmp / "diff").mkdir(parents=True)
            try:
                with store.open_blob(layer.digest) as src:
                    apply_layer(
                        src,
                        layer.media_type,
                        tmp / "diff",
                        diff_id=layer.diff_id,
                        idmap=chain.idmap,
                        overlay=True,
                        limits=WriteLimits.from_config(self.cfg),
                    )
            except BaseException:
                remove_tree(tmp)  # now, not at the next operation: the space may be needed
                raise
            meta = {"key": layer.key, "chain_id": layer.chain_id, "diff_id": layer.diff_id}
            atomic_write(tmp / "meta.json", json.dumps(meta).encode())
            syncfs(tmp)
            os.rename(tmp, final)
            fsync_dir(self.layers_dir)

    def _has_chain(self, chain: ImageChain) -> bool:
        return all(self._layer_dir(k).is_dir() for k in chain.keys)

    def _rootfs(self, container_id: str, keys: list[str]) -> Rootfs:
        cdir = self.containers_dir / container_id
        return Rootfs(
            backend=self.name,
            container_id=container_id,
            chain_key=keys[-1],
            path=cdir / "merged",
            lowerdirs=tuple(self._layer_dir(k) / "diff" for k in reversed(keys)),
            upperdir=cdir / "upper",
            workdir=cdir / "work",
        )

    def _create(self, chain: ImageChain, container_id: str) -> Rootfs:
        final = self.containers_dir / container_id
        if final.exists():
            raise StorageError(f"{final} exists but no container owns it; remove it by hand")
        tmp = self.containers_dir / (TMP + container_id)
        remove_tree(tmp)
        for sub in ("upper", "work", "merged"):
            (tmp / sub).mkdir(parents=True)
        # The merged root directory is the upper dir's root: give it the
        # container root's ownership so an unprivileged root owns "/".
        os.chmod(tmp / "upper", 0o755)
        if chain.idmap is not None:
            os.chown(tmp / "upper", chain.idmap.host, chain.idmap.host)
        os.rename(tmp, final)
        fsync_dir(self.containers_dir)
        return self._rootfs(container_id, list(chain.keys))

    def _remove(self, rootfs: Rootfs) -> None:
        if is_mountpoint(rootfs.path):
            rootfs.umount(rootfs.path)
        cdir = self.containers_dir / rootfs.container_id
        check_not_mounted(cdir, f"rootfs of container {rootfs.container_id}")
        remove_renamed(cdir)

    def _layers(self) -> dict[str, Path]:
        """Full chain key -> layer dir, for every complete layer."""
        return keyed_dirs(self.layers_dir)

    def _usage(self, refs: Refs) -> list[Usage]:
        out = [
            Usage("layer", key, disk_usage(p / "diff"), str(p), refs.users(key))
            for key, p in self._layers().items()
        ]
        for cid in sorted(refs.containers):
            cdir = self.containers_dir / cid
            used = disk_usage(cdir / "upper") + disk_usage(cdir / "work")
            out.append(Usage("container", cid, used, str(cdir)))
        return out

    def _prune(self, keep: set[str], result: PruneResult) -> None:
        for key, p in self._layers().items():
            if key in keep:
                result.kept += 1
                continue
            check_not_mounted(p, f"layer {key}")
            result.freed_bytes += disk_usage(p)
            remove_renamed(p)
            result.removed.append(key)
