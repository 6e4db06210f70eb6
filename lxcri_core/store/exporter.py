"""Export one image from the store as an oci-archive tar that Proxmox VE 9.1 reads.

The archive holds ``oci-layout``, an ``index.json`` with one manifest
descriptor (ref name annotation and platform) and the manifest, config and
layer blobs under ``blobs/sha256/``: what ``skopeo copy oci-archive:`` and
Proxmox VE 9.1's ``pct create`` read. Entries have fixed owners and times so
exporting the same image twice gives the same bytes.

What PVE 9.1 checks (pve-container ``PVE::API2::LXC`` create_vm, and
proxmox-oci's ``parse_and_extract_image``) and how this module meets it:

- the file name ends in ``.tar`` and ``tar -tf`` lists ``oci-layout``,
  ``index.json`` and ``blobs/...`` exactly so (no ``./``): else PVE treats the
  file as a plain rootfs tarball (the ``.tar`` rule is ``images.export_image``'s);
- the archive is a plain, seekable tar (no compression) with ``index.json``
  at its root;
- the first index entry of type ``application/vnd.oci.image.manifest.v1+json``
  (and, given an arch, with no platform or that architecture) is the image:
  we write exactly one entry, of that type, for the target platform;
- its config must be ``application/vnd.oci.image.config.v1+json``; layers
  must be OCI layer types (others are skipped, then every ``rootfs.diff_ids``
  entry must match an extracted layer's uncompressed digest): Docker types
  are converted (``oci_convert``), which gives the manifest a new digest. The
  index entry then names the store's manifest in ``io.lxcri.source.digest``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lxcri_core.digest import is_digest
from lxcri_core.errors import DigestMismatch, PlatformError, StoreError
from lxcri_core.fsutil import fsync_dir
from lxcri_core.log import get_logger
from lxcri_core.media import (
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    Platform,
    load_json,
)
from lxcri_core.platforms import host_platform, platform_matches, select_manifest
from lxcri_core.store.layout import (
    INDEX_DIGEST_ANNOTATION,
    LAYOUT_VERSION,
    ImageRecord,
    Store,
)
from lxcri_core.store.oci_convert import to_oci

#: Annotation on the exported index entry when the manifest was rewritten with
#: OCI media types: the digest of the manifest in the store (and registry)
#: it came from, so the exported image can be traced back to its source.
SOURCE_DIGEST_ANNOTATION = "io.lxcri.source.digest"
#: Largest image config we read (the importer's limit for JSON documents).
MAX_CONFIG = 8 << 20


@dataclass(frozen=True)
class ExportResult:
    """What ``write_oci_archive`` wrote.

    ``digest`` is the exported manifest's; ``source_digest`` the store's
    manifest it came from (the same unless ``converted``).
    """

    name: str
    digest: str
    source_digest: str
    converted: bool
    platform: str
    path: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source_digest": self.source_digest,
            "converted": self.converted,
            "platform": self.platform,
            "path": self.path,
            "size": self.size,
        }


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = 0
    if directory:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    else:
        ti.size, ti.mode = size, 0o644
    return ti


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


class _Hashing:
    """A read-only file that hashes what tarfile copies out of it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        return data


def _add_blob(tar: tarfile.TarFile, store: Store, desc: Descriptor) -> None:
    """Copy one blob in, checking it still has the digest and size the manifest gives.

    The store verified it when it was written; checking again costs one hash
    pass and keeps a blob changed on disk since out of an archive PVE trusts.
    """
    f: BinaryIO = store.open_blob(desc.digest)
    with f:
        size = os.fstat(f.fileno()).st_size
        if size != desc.size:
            raise DigestMismatch(
                f"blob {desc.digest} in the store is {size} bytes, its descriptor says {desc.size}"
            )
        h = _Hashing(f)
        tar.addfile(_info(f"blobs/sha256/{desc.digest.split(':', 1)[1]}", size), h)
        if "sha256:" + h.hash.hexdigest() != desc.digest:
            raise DigestMismatch(f"blob {desc.digest} in the store does not match its digest")


def _config_platform(store: Store, manifest: Manifest, what: str) -> Platform:
    """The platform the image config names, after checking what PVE relies on in it.

    PVE maps each ``rootfs.diff_ids`` entry to a layer; a config with fewer
    entries than layers would have PVE leave layers out of the rootfs silently.
    """
    on_disk = (
        store.blob_size(manifest.config.digest) if store.has_blob(manifest.config.digest) else 0
    )
    if max(manifest.config.size, on_disk) > MAX_CONFIG:
        raise StoreError(f"cannot export {what}: its config is larger than {MAX_CONFIG} bytes")
    doc = load_json(store.read_blob(manifest.config.digest), f"config of {what}")
    rootfs = doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and is_digest(d) for d in diff_ids
    ):
        raise StoreError(f"cannot export {what}: its config has no valid rootfs.diff_ids list")
    if len(diff_ids) != len(manifest.layers):
        raise StoreError(
            f"cannot export {what}: its config lists {len(diff_ids)} diff_ids for "
            f"{len(manifest.layers)} layers"
        )
    os_, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_, str) or not os_ or not isinstance(arch, str) or not arch:
        raise StoreError(f"cannot export {what}: its config lacks os or architecture")
    variant = doc.get("variant")
    return Platform(os_, arch, variant if isinstance(variant, str) else "")


def _stored(store: Store, manifest: Manifest) -> bool:
    return all(store.has_blob(d.digest) for d in (manifest.config, *manifest.layers))


def _pick_manifest(
    store: Store, record: ImageRecord, want: Platform
) -> tuple[Descriptor, Manifest, Platform]:
    """The manifest of ``record`` for ``want``: its own, or a sibling from its image index.

    A pull keeps the index it chose from; another platform's manifest is
    exported only when it and all its blobs are in the store.
    """
    desc = record.descriptor
    manifest = Manifest.parse(store.read_blob(desc.digest), desc.media_type)
    have = _config_platform(store, manifest, record.name)
    if desc.platform and (desc.platform.os, desc.platform.architecture) != (
        have.os,
        have.architecture,
    ):
        raise StoreError(
            f"cannot export {record.name}: its index entry says {desc.platform} "
            f"but its config says {have}"
        )
    if platform_matches(have, want):
        return desc, manifest, have
    idx = desc.annotations.get(INDEX_DIGEST_ANNOTATION, "")
    if is_digest(idx) and store.has_blob(idx):
        index = Index.parse(store.read_blob(idx))
        other = select_manifest(index, want, f"image index of {record.name}")
        if store.has_blob(other.digest):
            man = Manifest.parse(store.read_blob(other.digest), other.media_type)
            if _stored(store, man):
                plat = _config_platform(store, man, record.name)
                if platform_matches(plat, want):
                    return other, man, plat
        raise PlatformError(
            f"{record.name} is stored for {have} only and the target is {want}; "
            f"run `lxcri pull --platform {want} {record.name}` first"
        )
    raise PlatformError(
        f"{record.name} is a {have} image and the target is {want}; a Proxmox VE node "
        f"runs only its own platform (give --platform {have} if the node is {have})"
    )


def write_oci_archive(
    store: Store, record: ImageRecord, path: Path, platform: Platform | None = None
) -> ExportResult:
    """Write ``record`` as an oci-archive at ``path`` (temp file, fsync, rename).

    ``platform`` is the target node's (default: this host's); the image, or
    its sibling from the same index, must be for it. Docker media types are
    converted to OCI ones.
    """
    path = Path(path)
    want = platform or host_platform()
    if path.is_dir():
        raise StoreError(f"cannot export to {path}: it is a directory; give a file name like x.tar")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise StoreError(f"cannot export to {path}: {e.strerror}") from None
    try:
        # The lease keeps GC from deleting blobs while we copy them.
        with os.fdopen(fd, "wb") as out, store.in_use():
            desc, manifest, plat = _pick_manifest(store, record, want)
            oci = to_oci(store.read_blob(desc.digest), desc.digest, desc.media_type, record.name)
            annotations = {REF_NAME: record.name}
            if oci.converted:
                annotations[SOURCE_DIGEST_ANNOTATION] = desc.digest
            entry = Descriptor(OCI_MANIFEST, oci.digest, len(oci.data), annotations, plat)
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry.to_json()]}
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, "oci-layout", json.dumps(LAYOUT_VERSION).encode())
                tar.addfile(_info("blobs", directory=True))
                tar.addfile(_info("blobs/sha256", directory=True))
                _add_bytes(tar, f"blobs/sha256/{oci.digest.split(':', 1)[1]}", oci.data)
                seen = {oci.digest}
                for d in (manifest.config, *manifest.layers):
                    if d.digest not in seen:
                        seen.add(d.digest)
                        _add_blob(tar, store, d)
                # index.json last: a reader that sees it finds every blob it names.
                _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, StoreError):
            raise StoreError(f"cannot export to {path}: {e.strerror or e}") from None
        raise
    fsync_dir(path.parent)
    # Looked up per call: a logger first used before setup_logging() keeps
    # structlog's default (stdout, every level) for the life of the process.
    get_logger(__name__).info(
        "exported", image=record.name, digest=oci.digest, source=desc.digest, path=str(path)
    )
    return ExportResult(
        record.name, oci.digest, desc.digest, oci.converted, str(plat), str(path), size
    )
