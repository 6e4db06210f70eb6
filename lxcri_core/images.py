"""The image API the CLI and the TUI call: list, inspect, import, export, remove, prune.

Images live in the store at ``cfg.image_store`` under their full reference
(``docker.io/library/busybox:1.36``). Every function takes a ``Config`` and
returns a frozen dataclass with ``to_json()`` for ``--output json``.

Pruning is a list of steps (``PRUNE_STEPS``): today one that deletes store
blobs no image references; layer-chain pruning of the storage backends adds
its own step there (or passes ``steps=``) without changing the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_core.config import Config
from lxcri_core.errors import LxcriError, StoreError
from lxcri_core.media import Platform, load_json
from lxcri_core.reference import parse_reference
from lxcri_core.store import ImageRecord, Store
from lxcri_core.store.layout import INDEX_DIGEST_ANNOTATION

if TYPE_CHECKING:  # the exporter (tarfile, tempfile) loads only when exporting
    from lxcri_core.store.exporter import ExportResult

__all__ = [
    "PRUNE_STEPS",
    "ImageDetails",
    "ImageRecord",
    "ImageSummary",
    "LayerInfo",
    "PruneResult",
    "PrunedItem",
    "RemoveResult",
    "export_image",
    "import_image",
    "inspect_image",
    "list_images",
    "prune_images",
    "remove_image",
]


def _store(cfg: Config) -> Store:
    return Store(cfg.image_store, lock_timeout=cfg.lock_timeout, min_free=cfg.unpack_min_free)


def _split_name(name: str) -> tuple[str, str]:
    """(repository, tag) as docker prints them: ``busybox``, ``1.36``."""
    try:
        ref = parse_reference(name)
    except LxcriError:
        return name, "<none>"
    familiar = ref.familiar()
    repo = familiar.split("@", 1)[0]
    if ref.tag and repo.endswith(f":{ref.tag}"):
        repo = repo[: -len(ref.tag) - 1]
    return repo, ref.tag or "<none>"


@dataclass(frozen=True)
class ImageSummary:
    """One row of ``lxcri images``."""

    name: str  # the full store name
    repository: str
    tag: str
    digest: str  # manifest digest
    size: int  # bytes in the store: manifest + config + layers (as stored, compressed)
    platform: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "size": self.size,
            "platform": self.platform,
            "created": self.created,
        }


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    size: int
    media_type: str
    diff_id: str  # digest of the uncompressed tar, from the config ("" if unknown)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "diff_id": self.diff_id,
        }


@dataclass(frozen=True)
class ImageDetails:
    """What ``lxcri inspect`` shows."""

    name: str
    names: tuple[str, ...]  # every store name pointing at this manifest
    digest: str
    media_type: str
    manifest_size: int
    size: int
    platform: str
    created: str
    author: str
    config_digest: str
    config_size: int
    #: The image's run configuration (Entrypoint, Cmd, Env, ExposedPorts, Volumes, ...).
    config: dict[str, Any]
    layers: tuple[LayerInfo, ...]
    index_digest: str  # the image index this manifest was picked from, if any
    history: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "names": list(self.names),
            "digest": self.digest,
            "media_type": self.media_type,
            "manifest_size": self.manifest_size,
            "size": self.size,
            "platform": self.platform,
            "created": self.created,
            "author": self.author,
            "config_digest": self.config_digest,
            "config_size": self.config_size,
            "config": self.config,
            "layers": [la.to_json() for la in self.layers],
            "index_digest": self.index_digest,
            "history": list(self.history),
        }


def _details(store: Store, rec: ImageRecord, names: Sequence[str]) -> ImageDetails:
    desc = rec.descriptor
    try:
        manifest = store.manifest(desc.digest)
        cfg = load_json(store.read_blob(manifest.config.digest), "image config")
    except StoreError:
        raise
    except LxcriError as e:
        raise StoreError(f"image {rec.name} is damaged in the store: {e}") from None
    diff_ids = (cfg.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest.layers):
        diff_ids = [""] * len(manifest.layers)
    plat = desc.platform or (
        Platform.from_json(cfg) if cfg.get("os") and cfg.get("architecture") else None
    )
    history = cfg.get("history") or []
    return ImageDetails(
        name=rec.name,
        names=tuple(names),
        digest=desc.digest,
        media_type=desc.media_type,
        manifest_size=desc.size,
        size=desc.size + manifest.config.size + sum(la.size for la in manifest.layers),
        platform=str(plat) if plat else "",
        created=str(cfg.get("created") or ""),
        author=str(cfg.get("author") or ""),
        config_digest=manifest.config.digest,
        config_size=manifest.config.size,
        config=dict(cfg.get("config") or {}),
        layers=tuple(
            LayerInfo(la.digest, la.size, la.media_type, str(d))
            for la, d in zip(manifest.layers, diff_ids, strict=True)
        ),
        index_digest=desc.annotations.get(INDEX_DIGEST_ANNOTATION, ""),
        history=tuple(h for h in history if isinstance(h, dict)),
    )


def resolve_or_pull(
    cfg: Config,
    image: str,
    *,
    pull: str = "missing",
    insecure: bool = False,
    platform: str | None = None,
) -> tuple[Store, ImageRecord]:
    """The store and the image ``image`` names, pulled first when ``pull`` is
    ``always``, or ``missing`` and it is not in the store (``never``: not at all).

    What create/run on every backend use, so each finds the same images the same way.
    """
    from lxcri_core.errors import ImageNotFound, RegistryError
    from lxcri_core.store.resolve import resolve

    store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout).init()
    if pull != "always":
        try:
            return store, resolve(store, image)
        except ImageNotFound:
            if pull == "never":
                raise
    from lxcri_core.registry import pull as pull_image

    try:
        return store, pull_image(cfg, image, platform=platform, insecure=insecure)
    except RegistryError as e:
        if pull == "always":
            raise
        # say first that the image is not here: the registry's reason alone misleads
        raise ImageNotFound(
            f"image {image} is not in the local store and pulling it failed ({e}); "
            "check the name, or `lxcri import`/`lxcri pull` it first"
        ) from None


def list_images(cfg: Config) -> list[ImageSummary]:
    """Every named image in the store, sorted by name (an empty store lists nothing)."""
    store = _store(cfg)
    if not (store.root / "index.json").exists():
        return []
    out = []
    for rec in store.images():
        repo, tag = _split_name(rec.name)
        try:
            d = _details(store, rec, [rec.name])
        except StoreError:
            # A damaged image still gets its row (so it can be seen and removed);
            # `lxcri inspect` reports what is wrong with it.
            desc = rec.descriptor
            plat = str(desc.platform) if desc.platform else ""
            out.append(ImageSummary(rec.name, repo, tag, desc.digest, desc.size, plat, ""))
            continue
        out.append(ImageSummary(rec.name, repo, tag, d.digest, d.size, d.platform, d.created))
    return sorted(out, key=lambda s: s.name)


def inspect_image(cfg: Config, ref: str) -> ImageDetails:
    """Details of the image ``ref`` names: any docker form, a digest or a unique prefix."""
    from lxcri_core.store.resolve import find_records

    store = _store(cfg)
    recs = find_records(store, ref)
    names = [r.name for r in store.images() if r.descriptor.digest == recs[0].descriptor.digest]
    return _details(store, recs[0], names)


def import_image(
    cfg: Config, path: str | Path, name: str | None = None, *, platform: str | None = None
) -> ImageRecord:
    """Import an OCI layout dir, oci-archive or docker-archive at ``path`` as ``name``.

    ``name`` may be omitted when the source names its image (a docker-archive's
    RepoTags, or an OCI ref name that is a full reference). From an index the
    manifest for ``platform`` (default: the host's) is stored.
    """
    from lxcri_core.store.importer import import_path

    plat = Platform.parse(platform) if platform else None
    return import_path(_store(cfg), Path(path), name, plat)


def export_image(
    cfg: Config, ref: str, path: str | Path, *, platform: str | None = None
) -> ExportResult:
    """Write the image ``ref`` names to ``path`` as an oci-archive Proxmox VE reads.

    ``path`` must end in ``.tar``: PVE takes a template for an OCI image only
    by that suffix. ``platform`` is the target node's (default: this host's).
    Docker media types are converted to OCI ones (a new manifest digest; the
    result gives both).
    """
    from lxcri_core.store.exporter import write_oci_archive
    from lxcri_core.store.resolve import resolve

    p = Path(path)
    if p.suffix != ".tar" and not p.is_dir():  # the exporter says "directory" better
        raise StoreError(
            f"cannot export to {p}: the file name must end in .tar (Proxmox VE detects "
            f"an OCI archive only by that suffix); use {p.with_name(_tar_name(p.name))}"
        )
    plat = Platform.parse(platform) if platform else None
    store = _store(cfg)
    return write_oci_archive(store, resolve(store, ref), p, plat)


def _tar_name(name: str) -> str:
    """``x.tar.gz`` / ``x.oci`` / ``x`` -> ``x.tar``: the hint for a refused name."""
    stem = name.split(".tar", 1)[0] if ".tar" in name else name.rsplit(".", 1)[0] or name
    return f"{stem or 'image'}.tar"


@dataclass(frozen=True)
class RemoveResult:
    """What ``rmi`` did: names removed and blobs deleted because nothing else used them."""

    untagged: tuple[str, ...]
    digest: str
    deleted: tuple[str, ...]
    freed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "untagged": list(self.untagged),
            "digest": self.digest,
            "deleted": list(self.deleted),
            "freed": self.freed,
        }


def remove_image(cfg: Config, ref: str, *, force: bool = False) -> RemoveResult:
    """Remove a name (or, given a digest, every name of that image) and free its blobs.

    A digest shared by several names is refused unless ``force``, as docker does.
    """
    from lxcri_core.store.resolve import find_records

    store = _store(cfg)
    recs = find_records(store, ref)
    digest = recs[0].descriptor.digest
    if len(recs) > 1 and not force:
        raise StoreError(
            f"image {digest[:19]} has {len(recs)} names ({', '.join(r.name for r in recs)}); "
            "remove them one by one or use --force"
        )
    others = [r for r in store.images() if r.descriptor.digest == digest and r not in recs]
    if not others and not force:
        from lxcri_core.containers.record import list_records

        users = [c.name for c in list_records(cfg.root) if c.image_digest == digest]
        if users:
            raise StoreError(
                f"image {recs[0].name} is used by container(s) {', '.join(users)}; "
                "remove them first or use --force"
            )
    blobs = store.reachable_from([r.descriptor for r in recs])
    for r in recs:
        store.untag(r.name)
    deleted = store.discard_unreferenced(blobs)
    return RemoveResult(
        untagged=tuple(r.name for r in recs),
        digest=digest,
        deleted=tuple(d for d, _ in deleted),
        freed=sum(n for _, n in deleted),
    )


@dataclass(frozen=True)
class PrunedItem:
    kind: str  # "blob", "partial"; later steps add theirs ("chain", ...)
    id: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "size": self.size}


@dataclass(frozen=True)
class PruneResult:
    items: tuple[PrunedItem, ...] = ()

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def freed(self) -> int:
        return sum(i.size for i in self.items)

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(self.items + other.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [i.to_json() for i in self.items],
            "count": self.count,
            "freed": self.freed,
        }


PruneStep = Callable[[Config], PruneResult]


def prune_store_blobs(cfg: Config) -> PruneResult:
    """Delete blobs no named image reaches, and partial downloads left by crashes."""
    store = _store(cfg)
    if not (store.root / "index.json").exists():
        return PruneResult()
    return PruneResult(tuple(PrunedItem(k, i, n) for k, i, n in store.collect_garbage()))


def prune_layer_chains(cfg: Config) -> PruneResult:
    """Remove unpacked layer chains (dir/overlay/zfs) no image and no container uses."""
    from lxcri_core.storage import prune_backends

    store = _store(cfg)
    if not (store.root / "index.json").exists():
        return PruneResult()
    items = []
    for backend, res in prune_backends(cfg, store).items():
        for i, key in enumerate(res.removed):
            # the backend reports one total; book it on the first chain it removed
            items.append(PrunedItem(f"{backend} layer", key, res.freed_bytes if i == 0 else 0))
    return PruneResult(tuple(items))


#: Run in order by ``prune_images``: blobs first, then the layer chains of the
#: storage backends (which ask the store which images still exist).
PRUNE_STEPS: list[PruneStep] = [prune_store_blobs, prune_layer_chains]


def prune_images(cfg: Config, steps: Sequence[PruneStep] | None = None) -> PruneResult:
    """Run every prune step and return what they removed."""
    result = PruneResult()
    for step in PRUNE_STEPS if steps is None else steps:
        result = result + step(cfg)
    return result
