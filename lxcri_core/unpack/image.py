"""Flatten an image from the store into a root filesystem directory, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lxcri_core.errors import (
    LxcriError,
    PlatformError,
    StoreError,
    UnpackError,
)
from lxcri_core.fsutil import fsync_dir, syncfs
from lxcri_core.log import get_logger
from lxcri_core.media import INDEX_TYPES, Index, Manifest, load_json, sniff_media_type
from lxcri_core.platforms import host_platform, select_manifest
from lxcri_core.spec.model import IdMap
from lxcri_core.store import Store
from lxcri_core.unpack.apply import apply_layer
from lxcri_core.unpack.model import LayerStats, WriteLimits


def resolve_manifest(store: Store, ref_or_digest: str) -> tuple[str, Manifest]:
    """The manifest (digest, parsed) that a reference or digest names, for this host."""
    from lxcri_core.store.resolve import resolve

    digest = resolve(store, ref_or_digest).descriptor.digest  # the forms every command takes
    data = store.read_blob(digest)
    try:
        if sniff_media_type(data) in INDEX_TYPES:
            # the same choice as pull and import make (variant included)
            digest = select_manifest(
                Index.parse(data), host_platform(), f"image {ref_or_digest}"
            ).digest
            data = store.read_blob(digest)
        return digest, Manifest.parse(data)
    except (UnpackError, PlatformError):
        raise
    except LxcriError as e:
        raise UnpackError(f"image {ref_or_digest}: {e}") from None


def diff_ids(store: Store, man: Manifest, ref: str) -> list[str]:
    """The config's ``rootfs.diff_ids``, one per layer."""
    try:
        cfg = load_json(store.read_blob(man.config.digest), f"config of {ref}")
    except StoreError:
        raise
    except LxcriError as e:
        raise UnpackError(str(e)) from None
    ids = (cfg.get("rootfs") or {}).get("diff_ids")
    if not isinstance(ids, list) or len(ids) != len(man.layers):
        raise UnpackError(
            f"image {ref}: the config's rootfs.diff_ids does not list one digest per layer "
            f"({len(man.layers)} layers); the image is malformed"
        )
    return [str(i) for i in ids]


def unpack_rootfs(
    store: Store,
    ref_or_digest: str,
    target: Path,
    *,
    idmap: IdMap | None = None,
    limits: WriteLimits | None = None,
) -> list[LayerStats]:
    """``unpack_image`` that also returns each layer's statistics."""
    target = Path(target)
    if os.path.lexists(target):
        raise UnpackError(f"target {target} already exists; remove it or choose a new directory")
    parent = target.parent
    if not parent.is_dir():
        raise UnpackError(f"cannot unpack into {target}: {parent} is not a directory")
    with store.in_use():
        _, man = resolve_manifest(store, ref_or_digest)
        ids = diff_ids(store, man, ref_or_digest)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        try:
            os.chmod(staging, 0o755)
            if idmap is not None and os.geteuid() == 0:
                os.chown(staging, idmap.host, idmap.host)
            stats = []
            for desc, diff_id in zip(man.layers, ids, strict=True):
                with store.open_blob(desc.digest) as f:
                    stats.append(
                        apply_layer(
                            f,
                            desc.media_type,
                            staging,
                            diff_id=diff_id,
                            idmap=idmap,
                            limits=limits,
                        )
                    )
            # Nothing half-written may become visible: flush before the rename.
            syncfs(staging)
            os.rename(staging, target)
        except BaseException:  # errors, limits, Ctrl-C and (with term_raises) SIGTERM
            shutil.rmtree(staging, ignore_errors=True)
            raise
    fsync_dir(parent)
    # A logger per call: a module-level one would keep the configuration of its first use.
    get_logger(__name__).info(
        "image unpacked",
        image=ref_or_digest,
        target=str(target),
        layers=len(stats),
        files=sum(s.files for s in stats),
    )
    return stats


def unpack_image(
    store: Store,
    ref_or_digest: str,
    target: Path,
    *,
    idmap: IdMap | None = None,
    limits: WriteLimits | None = None,
) -> None:
    """Write the flattened root filesystem of an image into ``target``.

    ``target`` must not exist; the layers are applied into a staging
    directory beside it, which is renamed to ``target`` only when every
    layer applied and verified, and removed on failure (or when a layer
    would go past ``limits``).
    """
    unpack_rootfs(store, ref_or_digest, target, idmap=idmap, limits=limits)
