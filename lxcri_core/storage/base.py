"""The one interface of the dir, overlay and zfs storage backends.

A backend keeps unpacked layer chains (``prepare_image``) and per-container
root filesystems on top of them (``create_rootfs``). Its state lives under
``cfg.root/storage/<name>``: a lock file held around every change, and the
reference registry (``refs.json``) that says which images and containers use
which chain, so that ``prune`` only removes what nothing uses.

Crash safety: a layer (or template, or container rootfs) is built under a
temporary name and renamed to its final name only when complete; anything
left under a temporary name is removed by the next operation under the lock.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import flocked
from lxcri_core.log import get_logger
from lxcri_core.storage.chain import ImageChain, check_container_id, load_chain
from lxcri_core.storage.refs import ContainerRef, Refs, load_refs, save_refs
from lxcri_core.storage.rootfs import Rootfs

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.spec.model import IdMap
    from lxcri_core.store.layout import Store

log = get_logger(__name__)


@dataclass(frozen=True)
class Usage:
    """Space one stored object takes.

    ``kind`` is ``layer`` (one unpacked layer / dataset), ``image`` (a dir
    backend's flattened template) or ``container``. ``bytes`` is the space
    the object holds on its own: for an overlay container its upper dir, for
    a zfs clone its ``used``; shared lower layers are reported once, as
    layers. ``users`` counts the containers built on a layer or image.
    """

    kind: str
    name: str
    bytes: int
    location: str
    users: int = 0


@dataclass
class PruneResult:
    removed: list[str] = field(default_factory=list)  # chain keys
    freed_bytes: int = 0
    kept: int = 0


class StorageBackend(ABC):
    """Base of the backends; subclasses implement the ``_`` methods."""

    name: ClassVar[str]

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.state = cfg.root / "storage" / self.name
        self._refs_path = self.state / "refs.json"

    @property
    def containers_dir(self) -> Path:
        """Per-container state of the directory-based backends (dir, overlay)."""
        return self.state / "containers"

    def _remove_temporaries(self, *dirs: Path) -> None:
        """Delete what a crashed operation left under a temporary name in ``dirs``."""
        from lxcri_core.storage.fstree import TMP, remove_tree

        for d in dirs:
            if d.is_dir():
                for p in d.iterdir():
                    if p.name.startswith(TMP):
                        remove_tree(p)

    # -- locking and refs -------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The backend lock: held around every change to layers, rootfs and refs."""
        # private: layers hold every image's files (setuid binaries, device nodes);
        # containers reach their rootfs through a mount in their state dir instead
        for d in (self.state.parent, self.state):
            d.mkdir(parents=True, exist_ok=True)
            if os.stat(d).st_mode & 0o077:
                os.chmod(d, 0o700)
        with flocked(self.state / "lock", timeout=self.cfg.lock_timeout):
            yield

    def refs(self) -> Refs:
        return load_refs(self._refs_path)

    # -- the interface ----------------------------------------------------------
    def prepare_image(
        self, store: Store, manifest_digest: str, idmap: IdMap | None = None
    ) -> ImageChain:
        """Unpack the image's layer chain (what is missing of it); idempotent."""
        chain = load_chain(store, manifest_digest, idmap)
        with self.locked():
            self._cleanup_partial()
            self._prepare(store, chain)
            refs = self.refs()
            known = refs.images.get(manifest_digest, {}).get(chain.keys[-1])
            if known != list(chain.keys):  # a chain prepared before: nothing to write (fsync)
                refs.add_image(manifest_digest, list(chain.keys))
                save_refs(self._refs_path, refs)
        log.info("image prepared", backend=self.name, image=manifest_digest, chain=chain.key)
        return chain

    def create_rootfs(self, chain: ImageChain, container_id: str) -> Rootfs:
        """A new rootfs for ``container_id`` on top of a prepared chain."""
        check_container_id(container_id)
        with self.locked():
            refs = self.refs()
            if container_id in refs.containers:
                raise StorageError(
                    f"container {container_id} already has a {self.name} rootfs; remove it first"
                )
            if not self._has_chain(chain):
                raise StorageError(
                    f"image {chain.manifest_digest} is not prepared in the {self.name} backend; "
                    "prepare it first"
                )
            self._cleanup_partial()
            rootfs = self._create(chain, container_id)
            im = (chain.idmap.host, chain.idmap.count) if chain.idmap else None
            refs.containers[container_id] = ContainerRef(
                chain.manifest_digest, list(chain.keys), im
            )
            save_refs(self._refs_path, refs)
        log.info("rootfs created", backend=self.name, container=container_id)
        return rootfs

    def rootfs(self, container_id: str) -> Rootfs:
        """The rootfs of an existing container (to mount it, say)."""
        ref = self.refs().containers.get(container_id)
        if ref is None:
            raise StorageError(f"container {container_id} has no {self.name} rootfs")
        return self._rootfs(container_id, ref.chain)

    def containers(self) -> list[str]:
        return sorted(self.refs().containers)

    def remove_rootfs(self, container_id: str) -> None:
        """Delete a container's rootfs; its layers stay until ``prune``."""
        check_container_id(container_id)
        with self.locked():
            refs = self.refs()
            ref = refs.containers.get(container_id)
            if ref is None:
                raise StorageError(f"container {container_id} has no {self.name} rootfs")
            self._remove(self._rootfs(container_id, ref.chain))
            del refs.containers[container_id]
            save_refs(self._refs_path, refs)
        log.info("rootfs removed", backend=self.name, container=container_id)

    def usage(self) -> list[Usage]:
        """Space taken by every layer/image and container of this backend."""
        return self._usage(self.refs())

    def prune(self, in_use_images: set[str]) -> PruneResult:
        """Remove chains that no image in ``in_use_images`` and no container uses.

        ``in_use_images`` holds manifest digests, e.g. ``store.reachable()``.
        Images not in it are forgotten; their chains go unless a container or
        another live image still uses them.
        """
        with self.locked():
            self._cleanup_partial()
            refs = self.refs()
            refs.images = {m: c for m, c in refs.images.items() if m in in_use_images}
            save_refs(self._refs_path, refs)
            keep = refs.in_use(in_use_images)
            result = PruneResult()
            self._prune(keep, result)
        log.info("pruned", backend=self.name, removed=len(result.removed), freed=result.freed_bytes)
        return result

    # -- backend specifics ------------------------------------------------------
    @abstractmethod
    def _cleanup_partial(self) -> None:
        """Remove what a crashed operation left under a temporary name."""

    @abstractmethod
    def _prepare(self, store: Store, chain: ImageChain) -> None: ...

    @abstractmethod
    def _has_chain(self, chain: ImageChain) -> bool: ...

    @abstractmethod
    def _create(self, chain: ImageChain, container_id: str) -> Rootfs: ...

    @abstractmethod
    def _rootfs(self, container_id: str, keys: list[str]) -> Rootfs: ...

    @abstractmethod
    def _remove(self, rootfs: Rootfs) -> None: ...

    @abstractmethod
    def _usage(self, refs: Refs) -> list[Usage]: ...

    @abstractmethod
    def _prune(self, keep: set[str], result: PruneResult) -> None: ...


def check_not_mounted(path: Path, what: str) -> None:
    """Refuse to delete a tree something is mounted on (or from)."""
    from lxcri_core.storage.rootfs import mounts

    p = str(path.resolve())
    for point, _fstype, opts in mounts():
        if point == p or point.startswith(p + "/") or f"={p}/" in opts or f"={p}," in opts:
            raise StorageError(f"{what} at {p} is still mounted ({point}); unmount it first")
