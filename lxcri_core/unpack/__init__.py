"""Safe layer unpacker: OCI layer tars to a filesystem (whiteouts, id shift).

``apply_layer`` applies one layer to a directory (flattening onto lower
layers, or into a fresh overlay layer dir); ``unpack_image`` writes an
image's flattened root filesystem, staged and renamed into place.

The names are loaded on first use (PEP 562): ``lxcri run`` needs only
``IdMap`` when the layers are unpacked already, and the unpacker's modules
cost ~18 ms to import on every container start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxcri_core.spec.model import IdMap
    from lxcri_core.unpack.apply import apply_layer
    from lxcri_core.unpack.image import resolve_manifest, unpack_image, unpack_rootfs
    from lxcri_core.unpack.model import LayerStats, WriteLimits

_WHERE = {
    "IdMap": "spec.model",  # the one id-map class, re-exported for the unpacker's users
    "LayerStats": "model",
    "WriteLimits": "model",
    "apply_layer": "apply",
    "resolve_manifest": "image",
    "unpack_image": "image",
    "unpack_rootfs": "image",
}

__all__ = [
    "IdMap",
    "LayerStats",
    "WriteLimits",
    "apply_layer",
    "resolve_manifest",
    "unpack_image",
    "unpack_rootfs",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        where = _WHERE[name]
        module = f"lxcri_core.{where}" if "." in where else f"lxcri_core.unpack.{where}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
