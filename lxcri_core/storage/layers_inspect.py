"""The overlay and dir backends' stored trees: each layer (or flattened image)
directory, its size, and who uses it, from the backend's registry (refs.json).

Sizes are the blocks allocated below each directory (hardlinks once), as
``usage`` counts them; a layer shared by several images is listed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxcri_core.storage.refs import Refs

if TYPE_CHECKING:
    from lxcri_core.config import Config

#: The directory-based backends this module reads (zfs is zfs_inspect's).
DIR_BACKENDS = ("overlay", "dir")


@dataclass(frozen=True)
class StoredDir:
    backend: str  # overlay or dir
    kind: str  # layer (overlay), image (dir's flattened template) or container
    key: str  # chain key, or the container id
    path: str
    bytes: int
    containers: tuple[str, ...] = ()  # containers built on it (layers and images)
    images: tuple[str, ...] = ()  # image manifests lxcri keeps it for


def holders(refs: Refs, key: str, top_only: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(containers, image manifests) whose chain holds ``key`` (as its top layer only,
    for the dir backend's templates, which are whole images)."""
    cts = sorted(
        cid
        for cid, c in refs.containers.items()
        if (c.chain[-1:] == [key] if top_only else key in c.chain)
    )
    ims = sorted(
        m
        for m, chains in refs.images.items()
        if any((ch[-1:] == [key]) if top_only else key in ch for ch in chains.values())
    )
    return tuple(cts), tuple(ims)


def read_dirs(cfg: Config) -> list[StoredDir]:
    """Every layer/image/container directory of the overlay and dir backends that hold
    state under ``cfg.root/storage`` (a backend never used shows nothing)."""
    from lxcri_core.storage import open_backend

    out: list[StoredDir] = []
    for name in DIR_BACKENDS:
        if not (cfg.root / "storage" / name).is_dir():
            continue
        backend = open_backend(cfg, name)
        refs = backend.refs()
        for u in backend.usage():
            if u.kind == "container":
                out.append(StoredDir(name, u.kind, u.name, u.location, u.bytes))
                continue
            cts, ims = holders(refs, u.name, top_only=u.kind == "image")
            out.append(StoredDir(name, u.kind, u.name, u.location, u.bytes, cts, ims))
    return out
