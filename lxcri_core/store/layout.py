"""An OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256``) as a store.

Guarantees:
- a blob becomes visible under ``blobs/`` only after its digest and size were
  verified and it was fsynced (written to ``tmp/`` in the same filesystem and
  renamed), so readers never see a partial or wrong blob;
- downloads of one blob are serialised by a per-blob lock, so parallel pulls
  of one image store one copy; the partial file survives a crash and a later
  writer resumes from it after re-hashing what is there;
- ``index.json`` is rewritten atomically under the store lock.

skopeo (``oci:STORE:REF``) and umoci (``--layout STORE``) read it as is: ref
names are the full reference (``docker.io/library/nginx:1.27``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lxcri_core.config import min_free_bytes
from lxcri_core.digest import CHUNK, check_digest, hex_of, is_digest, sha256_bytes
from lxcri_core.errors import DigestMismatch, ImageNotFound, StoreError
from lxcri_core.fsutil import atomic_write, flocked, fsync_dir
from lxcri_core.media import (
    INDEX_TYPES,
    OCI_INDEX,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    load_json,
)

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
#: Annotation on an index.json entry naming the image index the manifest was
#: picked from; GC keeps that index blob too.
INDEX_DIGEST_ANNOTATION = "io.lxcri.index.digest"


@dataclass(frozen=True)
class ImageRecord:
    """One named image in the store: its ref name and manifest descriptor."""

    name: str
    descriptor: Descriptor


#: Bytes a blob writer writes between two looks at the filesystem's free space.
SPACE_CHECK_EVERY = 4 << 20


class BlobWriter:
    """Streams one blob into the store, hashing as it goes.

    Use through ``Store.blob_writer``; ``offset`` tells how much a previous,
    interrupted writer already left (ask the registry for ``Range: bytes=offset-``).
    """

    def __init__(self, store: Store, digest: str, size: int | None) -> None:
        self.store = store
        self.digest = check_digest(digest)
        self.size = size
        self.partial = store.tmp_dir / f"{hex_of(digest)}.partial"
        self._hash = hashlib.sha256()
        self._f: BinaryIO | None = None
        self.offset = 0
        self._unchecked = 0  # bytes written since the last free-space check

    def _open(self) -> None:
        # Resume: hash what a crashed or interrupted writer left behind.
        # 0600: a blob may hold a privileged image's setuid binaries and secrets
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._f = os.fdopen(fd, "a+b")
        os.fchmod(fd, 0o600)  # a partial an older version left world-readable
        self._f.seek(0)
        for chunk in iter(lambda: self._f.read(CHUNK), b""):  # type: ignore[union-attr]
            self._hash.update(chunk)
        self.offset = self._f.tell()
        if self.size is not None and self.offset > self.size:
            self.reset()
        self._check_space()

    def _check_space(self) -> None:
        """Refuse the blob before the filesystem goes below the ``unpack_min_free``
        reserve: a registry may declare (and stream) a layer of any size, and a
        full disk must not stay full, so the partial is removed too."""
        assert self._f is not None
        self._unchecked = 0
        st = os.fstatvfs(self._f.fileno())
        if not st.f_blocks:  # a filesystem that reports no size cannot be measured
            return
        reserve = min_free_bytes(self.store.min_free, st.f_blocks * st.f_frsize)
        free = st.f_bavail * st.f_frsize
        rest = max(self.size - self.offset, 0) if self.size is not None else 0
        if free - rest >= reserve:
            return
        self.abort()
        from lxcri_core.unpack.space import human

        need = f"its other {human(rest)}" if rest else "more"
        raise StoreError(
            f"blob {self.digest} refused: {need} would leave the filesystem of "
            f"{self.store.root} ({human(free)} free) below the {human(reserve)} it must keep "
            f"(unpack_min_free = {self.store.min_free}); its partial download was removed"
        )

    def reset(self) -> None:
        """Drop what was written (the server ignored our Range, say)."""
        assert self._f is not None
        self._f.seek(0)
        self._f.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> None:
        assert self._f is not None
        self._f.write(data)
        self._hash.update(data)
        self.offset += len(data)
        if self.size is not None and self.offset > self.size:
            raise DigestMismatch(
                f"blob {self.digest} is larger than its announced size {self.size}"
            )
        self._unchecked += len(data)
        if self._unchecked >= SPACE_CHECK_EVERY:
            self._check_space()  # others write to this filesystem too; size may be unknown

    def commit(self) -> Path:
        """Verify size and digest, fsync, and move the blob into place."""
        assert self._f is not None
        got = "sha256:" + self._hash.hexdigest()
        if (self.size is not None and self.offset != self.size) or got != self.digest:
            self.abort()
            what = f"size {self.offset} != {self.size}" if got == self.digest else f"got {got}"
            raise DigestMismatch(f"blob {self.digest} failed verification ({what}); discarded")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        dest = self.store.blob_path(self.digest)
        os.chmod(self.partial, 0o600)
        os.replace(self.partial, dest)
        fsync_dir(dest.parent)
        return dest

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()


class Store:
    """The image store at ``root`` (``$LXCRI_ROOT/images``)."""

    def __init__(
        self, root: Path, *, lock_timeout: float | None = 300.0, min_free: str = "auto"
    ) -> None:
        self.root = Path(root)
        #: Seconds to wait for a lock another process holds (config ``lock_timeout``).
        self.lock_timeout = lock_timeout
        #: Space blob writes leave free on the store's filesystem (config ``unpack_min_free``).
        self.min_free = min_free
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.tmp_dir = self.root / "tmp"
        self._lock_path = self.root / "tmp" / "index.lock"

    # -- layout ---------------------------------------------------------------
    def init(self) -> Store:
        """Create the layout if it does not exist yet (idempotent)."""
        try:
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            # private: blobs are every image's files, privileged ones' setuid binaries too
            for d in (self.root, self.root / "blobs", self.blobs_dir, self.tmp_dir):
                if os.stat(d).st_mode & 0o077:
                    os.chmod(d, 0o700)
        except OSError as e:
            raise StoreError(f"cannot create image store at {self.root}: {e.strerror}") from None
        with self.locked():
            if not (self.root / "oci-layout").exists():
                atomic_write(self.root / "oci-layout", json.dumps(LAYOUT_VERSION).encode())
            if not (self.root / "index.json").exists():
                self._write_index([])
        return self

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """A shared lease held by pulls and imports: GC waits until they have tagged."""
        with flocked(self.tmp_dir / "gc.lock", shared=True, timeout=self.lock_timeout):
            yield

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store lock: held while index.json is read-modified-written or GC runs."""
        with flocked(self._lock_path, timeout=self.lock_timeout):
            yield

    # -- blobs ----------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store {self.root}") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store {self.root}") from None

    @contextlib.contextmanager
    def blob_writer(self, digest: str, size: int | None) -> Iterator[BlobWriter | None]:
        """Yield a writer for a missing blob, or ``None`` when it is already stored.

        The per-blob lock makes concurrent writers of one blob wait for each
        other; the second one then finds the blob present and yields ``None``.
        On an exception the partial data is kept for a later resume unless
        it failed verification.
        """
        with flocked(self.tmp_dir / f"{hex_of(digest)}.lock"):
            if self.has_blob(digest):
                yield None
                return
            w = BlobWriter(self, digest, size)
            w._open()
            try:
                yield w
            except DigestMismatch:
                w.abort()
                raise
            except BaseException:
                if w._f is not None:
                    w._f.close()
                    w._f = None
                raise
            if w._f is not None:
                w.commit()

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store a small blob (manifest, config) given in full; return its digest."""
        got = sha256_bytes(data)
        if digest is not None and got != digest:
            raise DigestMismatch(f"content does not match digest {digest} (got {got})")
        with self.blob_writer(got, len(data)) as w:
            if w is not None:
                w.reset()
                w.write(data)
        return got

    def put_file(self, src: BinaryIO, digest: str, size: int | None = None) -> str:
        """Stream a blob from an open file, verifying ``digest`` and ``size``."""
        with self.blob_writer(digest, size) as w:
            if w is not None:
                w.reset()
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    w.write(chunk)
        return digest

    # -- index ----------------------------------------------------------------
    def _read_index_doc(self) -> dict[str, Any]:
        try:
            data = (self.root / "index.json").read_bytes()
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        try:
            return load_json(data, f"{self.root}/index.json")
        except Exception as e:
            raise StoreError(str(e)) from None

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        atomic_write(self.root / "index.json", json.dumps(doc, indent=2).encode())

    def images(self) -> list[ImageRecord]:
        """Every named image, in index order."""
        out = []
        for d in self._read_index_doc().get("manifests", []):
            desc = Descriptor.from_json(d)
            name = desc.annotations.get(REF_NAME)
            if name:
                out.append(ImageRecord(name, desc))
        return out

    def lookup(self, name: str) -> ImageRecord:
        for rec in self.images():
            if rec.name == name:
                return rec
        raise ImageNotFound(f"image {name} not found in the store; run `lxcri pull {name}` first")

    def tag(self, name: str, desc: Descriptor) -> None:
        """Point ``name`` at ``desc`` (replacing what it named before)."""
        if not self.has_blob(desc.digest):
            raise StoreError(f"cannot tag {name}: manifest {desc.digest} is not stored")
        annotations = {**desc.annotations, REF_NAME: name}
        entry = Descriptor(desc.media_type, desc.digest, desc.size, annotations, desc.platform)
        with self.locked():
            mans = [
                m
                for m in self._read_index_doc().get("manifests", [])
                if (m.get("annotations") or {}).get(REF_NAME) != name
            ]
            mans.append(entry.to_json())
            self._write_index(mans)

    def untag(self, name: str) -> ImageRecord:
        with self.locked():
            rec = self.lookup(name)
            mans = [
                m
                for m in self._read_index_doc().get("manifests", [])
                if (m.get("annotations") or {}).get(REF_NAME) != name
            ]
            self._write_index(mans)
        return rec

    # -- graph ----------------------------------------------------------------
    def manifest(self, digest: str) -> Manifest:
        return Manifest.parse(self.read_blob(digest))

    def reachable_from(self, descs: Iterable[Descriptor]) -> set[str]:
        """Digests reachable from ``descs``: manifests, indexes, configs, layers.

        A descriptor's ``io.lxcri.index.digest`` annotation keeps the index an
        image was picked from (pulls and imports store it for provenance).
        """
        seen: set[str] = set()
        todo = list(descs)
        while todo:
            desc = todo.pop()
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            idx = desc.annotations.get(INDEX_DIGEST_ANNOTATION)
            if idx and is_digest(idx):
                seen.add(idx)
            if not self.has_blob(desc.digest):
                continue
            if desc.media_type in INDEX_TYPES:
                todo.extend(Index.parse(self.read_blob(desc.digest)).manifests)
            elif desc.media_type.endswith("manifest.v1+json") or desc.media_type.endswith(
                "manifest.v2+json"
            ):
                man = self.manifest(desc.digest)
                seen.add(man.config.digest)
                seen.update(layer.digest for layer in man.layers)
        return seen

    def reachable(self) -> set[str]:
        """Digests reachable from index.json (manifests, indexes, configs, layers)."""
        return self.reachable_from(
            Descriptor.from_json(d) for d in self._read_index_doc().get("manifests", [])
        )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait until no pull or import holds ``in_use``, then keep new ones out.

        Never call this while holding ``in_use`` in the same process: the two
        locks are separate open files, so that would wait for itself.
        """
        with flocked(self.tmp_dir / "gc.lock", timeout=self.lock_timeout), self.locked():
            yield

    def discard_unreferenced(self, digests: Iterable[str]) -> list[tuple[str, int]]:
        """Delete those of ``digests`` that no named image reaches; return (digest, size).

        Used to roll back a failed import and to free an image's blobs after
        ``rmi``. It runs under the exclusive GC lock, so another import that
        found one of these blobs already present has tagged its image (and so
        keeps the blob) before we look.
        """
        removed: list[tuple[str, int]] = []
        wanted = {check_digest(d) for d in digests}
        if not wanted:
            return removed
        with self.exclusive():
            keep = self.reachable()
            for d in sorted(wanted - keep):
                p = self.blob_path(d)
                with contextlib.suppress(FileNotFoundError):
                    size = p.stat().st_size
                    p.unlink()
                    removed.append((d, size))
                with contextlib.suppress(FileNotFoundError):
                    (self.tmp_dir / f"{hex_of(d)}.partial").unlink()
            if removed:
                fsync_dir(self.blobs_dir)
        return removed

    def collect_garbage(self) -> list[tuple[str, str, int]]:
        """Remove unreachable blobs and stale partials; return (kind, id, size) of each.

        ``kind`` is ``blob`` (id: its digest) or ``partial`` (id: the digest
        an interrupted download or import was writing).
        """
        out: list[tuple[str, str, int]] = []
        with self.exclusive():
            keep = {hex_of(d) for d in self.reachable()}
            for p in sorted(self.blobs_dir.iterdir()):
                if p.name not in keep:
                    out.append(("blob", f"sha256:{p.name}", p.stat().st_size))
                    p.unlink()
            for p in sorted(self.tmp_dir.glob("*.partial")):
                hexd = p.name.removesuffix(".partial")
                out.append(("partial", f"sha256:{hexd}", p.stat().st_size))
                p.unlink()
        return out

    def gc(self) -> tuple[int, int]:
        """Remove unreachable blobs and stale partials; return (count, bytes) freed."""
        items = self.collect_garbage()
        return sum(1 for k, _, _ in items if k == "blob"), sum(
            n for k, _, n in items if k == "blob"
        )

    def blob_size(self, digest: str) -> int:
        return self.blob_path(digest).stat().st_size
