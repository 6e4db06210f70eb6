"""Layer chains: an image's layers as chain ids, read from the image store.

Chain ids follow the OCI image spec: ``chainID(L0) = diffID(L0)`` and
``chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))``, so two images
that share their first n layers share the first n chain ids, and the
backends share those unpacked layers. A layer unpacked with a uid/gid shift
differs on disk from the unshifted one, so the *key* under which a backend
stores it mixes the id map into the chain id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxcri_core.digest import is_digest
from lxcri_core.errors import LxcriError, StorageError, StoreError
from lxcri_core.ids import check_id
from lxcri_core.media import load_json

if TYPE_CHECKING:
    from lxcri_core.spec.model import IdMap
    from lxcri_core.store.layout import Store

#: Length of the hex prefix that names a layer on disk or in ZFS. 64 bits
#: keeps overlay's lowerdir option short (a 128-layer image still fits one
#: page) while collisions stay out of reach; the full key is kept alongside.
SHORT = 16


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI chain id of every prefix of ``diff_ids``."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def chain_key(chain_id: str, idmap: IdMap | None) -> str:
    """The storage key of a chain: its chain id, or a digest of it and the id map."""
    if idmap is None:
        return chain_id
    # the key of chains made before the one IdMap: host:count ("base" then)
    text = f"{chain_id} idmap {idmap.host}:{idmap.count}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def short_key(key: str) -> str:
    """The on-disk / dataset name of a chain key."""
    return key.split(":", 1)[-1][:SHORT]


def check_container_id(container_id: str) -> str:
    """Container ids become directory and dataset names: the one id rule (lxcri_core.ids)."""
    return check_id(container_id, "container id", StorageError)


@dataclass(frozen=True)
class ChainLayer:
    """One layer of an image, placed in its chain."""

    digest: str  # the (compressed) blob in the store
    media_type: str
    size: int
    diff_id: str  # digest of the uncompressed tar
    chain_id: str  # OCI chain id of the layers up to and including this one
    key: str  # chain id, mixed with the id map when there is one

    @property
    def short(self) -> str:
        return short_key(self.key)


@dataclass(frozen=True)
class ImageChain:
    """The layer chain of one image manifest, as a backend stores it."""

    manifest_digest: str
    layers: tuple[ChainLayer, ...]
    idmap: IdMap | None = None

    @property
    def top(self) -> ChainLayer:
        return self.layers[-1]

    @property
    def key(self) -> str:
        """The key of the whole chain (its top layer's)."""
        return self.top.key

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(layer.key for layer in self.layers)


def load_chain(store: Store, manifest_digest: str, idmap: IdMap | None = None) -> ImageChain:
    """Read an image's manifest and config from ``store`` and compute its chain."""
    try:
        man = store.manifest(manifest_digest)
        cfg = load_json(store.read_blob(man.config.digest), f"image config {man.config.digest}")
    except StoreError as e:
        raise StorageError(f"{e}; pull or import the image first") from None
    except LxcriError as e:
        raise StorageError(
            f"{manifest_digest} is not a single-platform image manifest ({e}); "
            "resolve the platform first"
        ) from None
    rootfs = cfg.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and is_digest(d) for d in diff_ids
    ):
        raise StorageError(f"image config {man.config.digest} has no valid rootfs.diff_ids")
    if len(diff_ids) != len(man.layers):
        raise StorageError(
            f"image {manifest_digest} lists {len(man.layers)} layers but its config "
            f"{len(diff_ids)} diff_ids; the image is corrupt, pull it again"
        )
    if not man.layers:
        raise StorageError(f"image {manifest_digest} has no layers; nothing to unpack")
    layers = tuple(
        ChainLayer(
            digest=desc.digest,
            media_type=desc.media_type,
            size=desc.size,
            diff_id=diff_id,
            chain_id=cid,
            key=chain_key(cid, idmap),
        )
        for desc, diff_id, cid in zip(man.layers, diff_ids, chain_ids(diff_ids), strict=True)
    )
    return ImageChain(manifest_digest, layers, idmap)
