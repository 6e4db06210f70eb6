"""Export one image from the store as an oci-archive tar.

The archive holds ``oci-layout``, an ``index.json`` with one manifest
descriptor (ref name annotation and platform) and the manifest, config and
layer blobs under ``blobs/sha256/``: what ``skopeo copy oci-archive:`` and
Proxmox VE 9.1's ``pct create`` read. Entries have fixed owners and times so
exporting the same image twice gives the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from lxcri_core.errors import StoreError
from lxcri_core.fsutil import fsync_dir
from lxcri_core.log import get_logger
from lxcri_core.media import OCI_INDEX, REF_NAME, Descriptor, Manifest
from lxcri_core.store.layout import LAYOUT_VERSION, ImageRecord, Store


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


def _add_blob(tar: tarfile.TarFile, store: Store, digest: str) -> None:
    f: BinaryIO = store.open_blob(digest)
    with f:
        size = os.fstat(f.fileno()).st_size
        tar.addfile(_info(f"blobs/sha256/{digest.split(':', 1)[1]}", size), f)


def write_oci_archive(store: Store, record: ImageRecord, path: Path) -> int:
    """Write ``record`` as an oci-archive at ``path`` (temp file, fsync, rename); return size."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"cannot export to {path}: it is a directory; give a file name like x.tar")
    desc = record.descriptor
    entry = Descriptor(
        desc.media_type, desc.digest, desc.size, {REF_NAME: record.name}, desc.platform
    )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry.to_json()]}
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise StoreError(f"cannot export to {path}: {e.strerror}") from None
    try:
        # The lease keeps GC from deleting blobs while we copy them.
        with os.fdopen(fd, "wb") as out, store.in_use():
            manifest = Manifest.parse(store.read_blob(desc.digest), desc.media_type)
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, "oci-layout", json.dumps(LAYOUT_VERSION).encode())
                tar.addfile(_info("blobs", directory=True))
                tar.addfile(_info("blobs/sha256", directory=True))
                seen: set[str] = set()
                for d in (
                    desc.digest,
                    manifest.config.digest,
                    *(la.digest for la in manifest.layers),
                ):
                    if d not in seen:
                        seen.add(d)
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
    get_logger(__name__).info("exported", image=record.name, digest=desc.digest, path=str(path))
    return size
