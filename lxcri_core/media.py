"""OCI and Docker media types, and the JSON documents that carry them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lxcri_core.digest import check_digest
from lxcri_core.errors import LxcriError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
#: What we send in ``Accept`` when asking a registry for a manifest.
ACCEPT_MANIFESTS = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))

REF_NAME = "org.opencontainers.image.ref.name"


def layer_compression(media_type: str) -> str:
    """``gzip``, ``zstd`` or ``none`` for a layer media type."""
    if media_type in (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER):
        return "gzip"
    if media_type == OCI_LAYER_ZSTD:
        return "zstd"
    if media_type in (OCI_LAYER, "application/vnd.oci.image.layer.nondistributable.v1.tar"):
        return "none"
    raise LxcriError(f"unsupported layer media type {media_type!r}")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise LxcriError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
        return cls(*parts)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Platform:
        return cls(str(d.get("os", "")), str(d.get("architecture", "")), str(d.get("variant", "")))

    def to_json(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: Any) -> Descriptor:
        if not isinstance(d, dict):
            raise LxcriError("descriptor is not a JSON object")
        try:
            size = d["size"]
            if not isinstance(size, int) or size < 0:
                raise LxcriError(f"descriptor size {size!r} is not a non-negative integer")
            plat = d.get("platform")
            return cls(
                media_type=str(d.get("mediaType", "")),
                digest=check_digest(str(d["digest"])),
                size=size,
                annotations=dict(d.get("annotations") or {}),
                platform=Platform.from_json(plat) if isinstance(plat, dict) else None,
                urls=tuple(d.get("urls") or ()),
            )
        except KeyError as e:
            raise LxcriError(f"descriptor lacks {e.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = self.platform.to_json()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.urls:
            d["urls"] = list(self.urls)
        return d


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise LxcriError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise LxcriError(f"{what} is not a JSON object")
    return doc


def dump_json(doc: Any) -> bytes:
    """Canonical-enough JSON: compact and stable so digests are reproducible."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, media_type: str = "") -> Manifest:
        doc = load_json(data, "image manifest")
        mt = str(doc.get("mediaType") or media_type or OCI_MANIFEST)
        if mt not in MANIFEST_TYPES:
            raise LxcriError(f"not an image manifest: media type {mt!r}")
        if "config" not in doc or not isinstance(doc.get("layers", []), list):
            raise LxcriError("image manifest lacks config or layers")
        return cls(
            media_type=mt,
            config=Descriptor.from_json(doc["config"]),
            layers=tuple(Descriptor.from_json(x) for x in doc.get("layers") or []),
            annotations=dict(doc.get("annotations") or {}),
        )


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    @classmethod
    def parse(cls, data: bytes, media_type: str = "") -> Index:
        doc = load_json(data, "image index")
        mt = str(doc.get("mediaType") or media_type or OCI_INDEX)
        if mt not in INDEX_TYPES:
            raise LxcriError(f"not an image index: media type {mt!r}")
        mans = doc.get("manifests")
        if not isinstance(mans, list):
            raise LxcriError("image index lacks a manifests list")
        return cls(mt, tuple(Descriptor.from_json(x) for x in mans))


def sniff_media_type(data: bytes, declared: str = "") -> str:
    """The media type of a manifest or index document (declared, else guessed)."""
    if declared and declared not in ("application/json", "text/plain"):
        return declared.split(";")[0].strip()
    doc = load_json(data, "manifest")
    if doc.get("mediaType"):
        return str(doc["mediaType"])
    return OCI_INDEX if "manifests" in doc else OCI_MANIFEST
