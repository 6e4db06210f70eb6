"""Docker schema 2 media types to OCI ones, for archives Proxmox VE reads.

Proxmox VE 9.1 (``proxmox-oci``) takes the first index entry of the OCI
manifest type, refuses a config of any type but the OCI config type, and
skips layers whose type is not an OCI layer type, so a Docker-typed image
fails there with "Unknown layer digest ... found in rootfs.diff_ids".
Converting changes only ``mediaType`` fields: config and layer bytes (and so
the config's ``diff_ids``) stay the same, the manifest gets a new digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxcri_core.digest import sha256_bytes
from lxcri_core.errors import StoreError
from lxcri_core.media import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    dump_json,
    load_json,
)

#: Layer types written unchanged: the three PVE extracts.
OCI_LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD)
#: Docker layer types and their OCI equivalents (same bytes). The plain-tar
#: and zstd Docker types are containerd's, not in Docker's spec, but seen.
DOCKER_LAYER_TYPES = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": OCI_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": OCI_LAYER_ZSTD,
}
#: Layers whose content may live outside the image (a URL): an archive meant
#: to be complete cannot carry them faithfully, so export refuses them.
FOREIGN_LAYER_TYPES = (
    DOCKER_FOREIGN_LAYER,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)
CONFIG_TYPES = {OCI_CONFIG: OCI_CONFIG, DOCKER_CONFIG: OCI_CONFIG}


@dataclass(frozen=True)
class OciManifest:
    """A manifest with OCI media types: its bytes, digest and whether it was rewritten."""

    data: bytes
    digest: str
    converted: bool


def _layer_type(i: int, mt: str, what: str) -> str:
    if mt in OCI_LAYER_TYPES:
        return mt
    if mt in DOCKER_LAYER_TYPES:
        return DOCKER_LAYER_TYPES[mt]
    if mt in FOREIGN_LAYER_TYPES:
        raise StoreError(
            f"cannot export {what}: layer {i} is a foreign (non-distributable) layer ({mt}) "
            "whose content may not be in the store; Proxmox VE needs every layer in the archive"
        )
    raise StoreError(
        f"cannot export {what}: layer {i} has media type {mt!r}, which has no OCI layer "
        "equivalent Proxmox VE reads (tar, tar+gzip, tar+zstd)"
    )


def to_oci(data: bytes, digest: str, media_type: str, what: str) -> OciManifest:
    """The manifest ``data`` (digest ``digest``, declared ``media_type``) with OCI media types.

    An OCI manifest already using only OCI types is returned as is, so its
    digest is kept; anything else is rewritten: only ``mediaType`` fields
    change, every other field (annotations, sizes, digests) is kept.
    ``what`` names the image in errors.
    """
    doc = load_json(data, f"manifest of {what}")
    mt = doc.get("mediaType") or media_type or OCI_MANIFEST
    if mt not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise StoreError(f"cannot export {what}: manifest media type {mt!r} is not an image")
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise StoreError(f"cannot export {what}: manifest lacks config or layers")
    cmt = config.get("mediaType")
    if cmt not in CONFIG_TYPES:
        raise StoreError(
            f"cannot export {what}: config media type {cmt!r} is not a container image config "
            "(an artifact, not an image)"
        )
    new_layers: list[Any] = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise StoreError(f"cannot export {what}: layer {i} is not a JSON object")
        new_layers.append({**layer, "mediaType": _layer_type(i, str(layer.get("mediaType")), what)})
    new_config = {**config, "mediaType": CONFIG_TYPES[cmt]}
    if mt == OCI_MANIFEST and new_config == config and new_layers == layers:
        return OciManifest(data, digest, False)
    out = {**doc, "mediaType": OCI_MANIFEST, "config": new_config, "layers": new_layers}
    new = dump_json(out)
    return OciManifest(new, sha256_bytes(new), True)
