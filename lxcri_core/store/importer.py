"""Import an image into the store from an OCI layout, an oci-archive or a docker-archive.

Import runs in two phases so that bad input changes nothing:

1. plan: read and check every JSON document (index, manifest, config) and
   the presence and size of every blob, without writing anything;
2. commit: stream each blob into the store with ``Store.put_file`` (which
   verifies digest and size before the blob becomes visible), then tag.

A digest mismatch or truncated data found in phase 2 rolls back: the blobs
this import added and no image references are deleted again under the GC
lock, so the store looks as if the import never ran.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxcri_core.digest import is_digest, sha256_bytes, sha256_file
from lxcri_core.errors import DigestMismatch, ImportError_, LxcriError
from lxcri_core.log import get_logger
from lxcri_core.media import (
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    Platform,
    dump_json,
    load_json,
    sniff_media_type,
)
from lxcri_core.platforms import host_platform, select_manifest
from lxcri_core.reference import Reference, parse_reference
from lxcri_core.store.archive import Source, open_source
from lxcri_core.store.layout import INDEX_DIGEST_ANNOTATION, ImageRecord, Store

#: Largest index, manifest or config we read into memory.
MAX_DOCUMENT = 8 << 20
#: Nesting of image indexes we follow before giving up (index -> index -> manifest).
MAX_INDEX_DEPTH = 3
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class SourceBlob:
    """A blob to stream from the source: its digest, size and file name there."""

    digest: str
    size: int
    member: str


@dataclass(frozen=True)
class ImportPlan:
    """Everything checked and ready to write; nothing written yet."""

    name: str
    format: str  # "oci" (layout or oci-archive) or "docker" (docker-archive)
    descriptor: Descriptor  # the index.json entry, without the ref name
    documents: tuple[bytes, ...]  # verified small blobs: config, manifest, index
    blobs: tuple[SourceBlob, ...]  # layers, streamed and verified on commit


def _fail(src: Source, why: str) -> ImportError_:
    return ImportError_(f"cannot import {src.path}: {why}")


def detect_format(src: Source) -> str:
    """``oci`` for a layout or oci-archive, ``docker`` for a docker-archive."""
    if src.has("oci-layout"):  # newer `docker save` writes both; OCI is the richer one
        return "oci"
    if src.has("manifest.json"):
        return "docker"
    raise _fail(
        src,
        "neither an OCI layout (no oci-layout file) nor a docker-archive (no manifest.json)",
    )


def _blob_name(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


def _read_verified(src: Source, desc: Descriptor) -> bytes:
    """A small blob named by ``desc``, checked against its size and digest."""
    name = _blob_name(desc.digest)
    if not src.has(name):
        raise _fail(src, f"blob {desc.digest} is missing; the layout or archive is incomplete")
    size = src.size(name)
    if size != desc.size:
        raise _fail(src, f"blob {desc.digest} is {size} bytes, its descriptor says {desc.size}")
    data = src.read(name, MAX_DOCUMENT)
    got = sha256_bytes(data)
    if got != desc.digest:
        raise _fail(src, f"blob {desc.digest} does not match its digest (got {got}); corrupt")
    return data


def _names_match(ref_name: str, ref: Reference) -> bool:
    """Does an index.json ref name (a bare tag or a full reference) name ``ref``?"""
    if not ref_name:
        return False
    if ref_name in (ref.tag, str(ref)):
        return True
    try:
        return str(parse_reference(ref_name)) == str(ref)
    except LxcriError:
        return False


def _full_name(ref_name: str) -> str | None:
    """A store name from a ref name that is a whole reference (``repo/x:1``), not a tag."""
    if "/" not in ref_name and ":" not in ref_name:
        return None  # a bare tag ("1.0") says nothing about the repository
    try:
        ref = parse_reference(ref_name)
    except LxcriError:
        return None
    return None if ref.digest else str(ref)


def _need_name(src: Source, name: str | None) -> str:
    if name is None:
        raise _fail(src, "it does not name its image; give a name with --name REPO[:TAG]")
    return name


# -- OCI layout / oci-archive -------------------------------------------------------------------
def _pick_oci_entry(src: Source, index: Index, ref: Reference | None, want: Platform) -> Descriptor:
    entries = index.manifests
    if not entries:
        raise _fail(src, "its index.json lists no images")
    if ref is not None:
        matches = [e for e in entries if _names_match(e.annotations.get(REF_NAME, ""), ref)]
        if matches:
            return matches[-1]  # the last one wins, as when tagging twice
    if len(entries) == 1:
        return entries[0]
    if all(e.platform for e in entries) and not any(REF_NAME in e.annotations for e in entries):
        return select_manifest(index, want, f"index.json of {src.path}")
    names = ", ".join(e.annotations.get(REF_NAME) or e.digest[:19] for e in entries)
    raise _fail(
        src,
        f"it holds {len(entries)} images ({names}); choose one with --name REPO:TAG "
        "where TAG is one of these names",
    )


def _plan_oci(src: Source, ref: Reference | None, want: Platform) -> ImportPlan:
    try:
        layout = load_json(src.read("oci-layout", MAX_DOCUMENT), "oci-layout")
        if not isinstance(layout.get("imageLayoutVersion"), str):
            raise LxcriError("oci-layout lacks imageLayoutVersion")
        index = Index.parse(src.read("index.json", MAX_DOCUMENT))
    except ImportError_:
        raise
    except LxcriError as e:
        raise _fail(src, str(e)) from None
    entry = _pick_oci_entry(src, index, ref, want)
    desc, index_doc = entry, None
    for _ in range(MAX_INDEX_DEPTH):
        data = _read_verified(src, desc)
        try:
            mt = desc.media_type or sniff_media_type(data)
            if mt not in INDEX_TYPES:
                manifest = Manifest.parse(data, mt)
                break
            sub = Index.parse(data, mt)
        except LxcriError as e:
            raise _fail(src, f"{desc.digest}: {e}") from None
        index_doc = (desc.digest, data)
        desc = select_manifest(sub, want, f"image index {desc.digest} in {src.path}")
    else:
        raise _fail(src, f"image indexes nested more than {MAX_INDEX_DEPTH} deep")

    config = _read_verified(src, manifest.config)
    try:
        platform = desc.platform or _platform_of(load_json(config, "image config"))
    except LxcriError as e:
        raise _fail(src, f"config {manifest.config.digest}: {e}") from None
    blobs = []
    for layer in manifest.layers:
        member = _blob_name(layer.digest)
        if not src.has(member):
            raise _fail(
                src, f"layer {layer.digest} is missing; the layout or archive is incomplete"
            )
        size = src.size(member)
        if size != layer.size:
            raise _fail(
                src, f"layer {layer.digest} is {size} bytes, the manifest says {layer.size}"
            )
        blobs.append(SourceBlob(layer.digest, size, member))

    annotations = {INDEX_DIGEST_ANNOTATION: index_doc[0]} if index_doc else {}
    documents = [config, data] + ([index_doc[1]] if index_doc else [])
    name = str(ref) if ref else _need_name(src, _full_name(entry.annotations.get(REF_NAME, "")))
    return ImportPlan(
        name=name,
        format="oci",
        descriptor=Descriptor(manifest.media_type, desc.digest, desc.size, annotations, platform),
        documents=tuple(documents),
        blobs=tuple(blobs),
    )


# -- docker-archive ---------------------------------------------------------------------------
def _platform_of(config: dict[str, Any]) -> Platform | None:
    if not config.get("os") or not config.get("architecture"):
        return None
    return Platform.from_json(config)


def _pick_docker_entry(
    src: Source, entries: list[dict[str, Any]], ref: Reference | None
) -> tuple[dict[str, Any], str | None]:
    """The manifest.json entry to import and the name its RepoTags give it."""

    def tags(e: dict[str, Any]) -> list[str]:
        return [t for t in e.get("RepoTags") or [] if isinstance(t, str)]

    if ref is not None:
        for e in entries:
            if any(_names_match(t, ref) for t in tags(e)):
                return e, str(ref)
    if len(entries) == 1:
        e = entries[0]
        names = [n for n in (_full_name(t) for t in tags(e)) if n]
        return e, names[0] if names else None
    listed = ", ".join(t for e in entries for t in tags(e)) or "untagged images"
    raise _fail(
        src,
        f"it holds {len(entries)} images ({listed}); choose one with --name set to one of them",
    )


def _hash_member(src: Source, member: str) -> str:
    with src.open(member) as f:
        return sha256_file(f)


def _plan_docker(src: Source, ref: Reference | None) -> ImportPlan:
    try:
        entries = json.loads(src.read("manifest.json", MAX_DOCUMENT))
    except (ValueError, UnicodeDecodeError) as e:
        raise _fail(src, f"manifest.json is not valid JSON: {e}") from None
    if (
        not isinstance(entries, list)
        or not entries
        or not all(
            isinstance(e, dict)
            and isinstance(e.get("Config"), str)
            and isinstance(e.get("Layers"), list)
            and all(isinstance(x, str) for x in e["Layers"])
            for e in entries
        )
    ):
        raise _fail(src, "manifest.json must be a list of {Config, RepoTags, Layers} objects")
    entry, derived = _pick_docker_entry(src, entries, ref)

    cfg_name: str = entry["Config"]
    config = src.read(cfg_name, MAX_DOCUMENT)
    cfg_digest = sha256_bytes(config)
    # The file is named after its digest (<hex>.json or blobs/sha256/<hex>): check it.
    claimed = "sha256:" + cfg_name.rsplit("/", 1)[-1].removesuffix(".json")
    if is_digest(claimed) and claimed != cfg_digest:
        raise _fail(src, f"config {cfg_name} does not match its digest (got {cfg_digest}); corrupt")
    try:
        cfg = load_json(config, f"config {cfg_name}")
        diff_ids = (cfg.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and is_digest(d) for d in diff_ids
        ):
            raise LxcriError(f"config {cfg_name} lacks rootfs.diff_ids (sha256 digests)")
        platform = _platform_of(cfg)
    except LxcriError as e:
        raise _fail(src, str(e)) from None
    layer_names: list[str] = entry["Layers"]
    if len(diff_ids) != len(layer_names):
        raise _fail(
            src, f"manifest.json lists {len(layer_names)} layers, the config {len(diff_ids)}"
        )

    blobs, layer_descs = [], []
    for member, diff_id in zip(layer_names, diff_ids, strict=True):
        size = src.size(member)
        with src.open(member) as f:
            head = f.read(4)
        if head.startswith(_GZIP_MAGIC) or head == _ZSTD_MAGIC:
            # Compressed: the blob digest is not the diff_id; hash it to name it.
            mt = OCI_LAYER_GZIP if head.startswith(_GZIP_MAGIC) else OCI_LAYER_ZSTD
            digest = _hash_member(src, member)
        else:
            # docker save writes plain tars: the blob digest is the diff_id, and the
            # store checks it while streaming.
            mt, digest = OCI_LAYER, diff_id
        blobs.append(SourceBlob(digest, size, member))
        layer_descs.append({"mediaType": mt, "digest": digest, "size": size})
    manifest = dump_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
            "layers": layer_descs,
        }
    )
    name = str(ref) if ref else _need_name(src, derived)
    return ImportPlan(
        name=name,
        format="docker",
        descriptor=Descriptor(OCI_MANIFEST, sha256_bytes(manifest), len(manifest), {}, platform),
        documents=(config, manifest),
        blobs=tuple(blobs),
    )


# -- entry points -----------------------------------------------------------------------------
def plan_import(src: Source, name: str | None, platform: Platform | None = None) -> ImportPlan:
    """Check ``src`` and decide what to write; raises ImportError_ on bad input."""
    ref = None
    if name is not None:
        ref = parse_reference(name)
        if ref.digest:
            raise ImportError_(
                f"cannot import as {name}: the name must be REPO[:TAG]; the digest comes "
                "from the image itself"
            )
    if detect_format(src) == "docker":
        return _plan_docker(src, ref)
    return _plan_oci(src, ref, platform or host_platform())


def commit_import(store: Store, src: Source, plan: ImportPlan) -> ImageRecord:
    """Write the plan's blobs (verified) and tag; roll back on any failure."""
    store.init()
    added: list[str] = []  # blobs that were missing before: candidates for rollback
    try:
        with store.in_use():
            for blob in plan.blobs:
                if not store.has_blob(blob.digest):
                    added.append(blob.digest)
                with src.open(blob.member) as f:
                    store.put_file(f, blob.digest, blob.size)
            for doc in plan.documents:
                digest = sha256_bytes(doc)
                if not store.has_blob(digest):
                    added.append(digest)
                store.put_bytes(doc, digest)
            store.tag(plan.name, plan.descriptor)
    except Exception as e:
        store.discard_unreferenced(added)
        if isinstance(e, DigestMismatch):
            raise _fail(src, f"{e}; the archive is corrupt, nothing was imported") from None
        if isinstance(e, tarfile.TarError | EOFError):
            raise _fail(
                src, f"the archive is truncated or corrupt ({e}); nothing was imported"
            ) from None
        if isinstance(e, OSError) and not isinstance(e, LxcriError):
            raise _fail(src, f"{e.strerror or e}; nothing was imported") from None
        raise
    # Looked up per call: a logger first used before setup_logging() keeps
    # structlog's default (stdout, every level) for the life of the process.
    get_logger(__name__).info(
        "imported", image=plan.name, digest=plan.descriptor.digest, format=plan.format
    )
    return store.lookup(plan.name)


def import_path(
    store: Store, path: Path, name: str | None = None, platform: Platform | None = None
) -> ImageRecord:
    """Import the image at ``path`` (directory or tar) into ``store`` as ``name``."""
    with open_source(Path(path)) as src:
        plan = plan_import(src, name, platform)
        return commit_import(store, src, plan)
