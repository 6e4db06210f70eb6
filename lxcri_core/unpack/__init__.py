"""Safe layer unpacker: OCI layer tars to a filesystem (whiteouts, id shift).

``apply_layer`` applies one layer to a directory (flattening onto lower
layers, or into a fresh overlay layer dir); ``unpack_image`` writes an
image's flattened root filesystem, staged and renamed into place.
"""

from lxcri_core.unpack.apply import apply_layer
from lxcri_core.unpack.image import resolve_manifest, unpack_image, unpack_rootfs
from lxcri_core.unpack.model import IdMap, LayerStats

__all__ = [
    "IdMap",
    "LayerStats",
    "apply_layer",
    "resolve_manifest",
    "unpack_image",
    "unpack_rootfs",
]
