"""Who uses which layer chain: the reference registry of one storage backend.

A small JSON file, rewritten atomically; callers hold the backend's lock
around read-modify-write. Images are recorded by manifest digest (one image
may be prepared with several id maps, hence several chains), containers by
id. A chain key is in use when a live image or a container lists it; every
record lists the whole chain (all prefixes), so keeping a chain keeps the
layers below it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core.errors import StorageError
from lxcri_core.fsutil import atomic_write


@dataclass
class ContainerRef:
    image: str  # manifest digest
    chain: list[str]  # chain keys, bottom layer first
    idmap: tuple[int, int] | None = None


@dataclass
class Refs:
    #: manifest digest -> {top chain key: [chain keys, bottom first]}
    images: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    containers: dict[str, ContainerRef] = field(default_factory=dict)

    def add_image(self, manifest: str, keys: list[str]) -> None:
        self.images.setdefault(manifest, {})[keys[-1]] = list(keys)

    def in_use(self, live_images: set[str]) -> set[str]:
        """Chain keys used by a live image or by any container."""
        keys: set[str] = set()
        for manifest, chains in self.images.items():
            if manifest in live_images:
                for chain in chains.values():
                    keys.update(chain)
        for c in self.containers.values():
            keys.update(c.chain)
        return keys

    def users(self, key: str) -> int:
        """How many containers use ``key`` (directly or as a lower layer)."""
        return sum(1 for c in self.containers.values() if key in c.chain)


def load_refs(path: Path) -> Refs:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Refs()
    except ValueError as e:
        raise StorageError(
            f"storage registry {path} is corrupt ({e}); restore or remove it"
        ) from None
    refs = Refs()
    try:
        for manifest, chains in doc.get("images", {}).items():
            refs.images[str(manifest)] = {str(k): [str(x) for x in v] for k, v in chains.items()}
        for cid, c in doc.get("containers", {}).items():
            im = c.get("idmap")
            refs.containers[str(cid)] = ContainerRef(
                str(c["image"]),
                [str(x) for x in c["chain"]],
                (int(im[0]), int(im[1])) if im else None,
            )
    except (AttributeError, KeyError, TypeError, IndexError) as e:
        raise StorageError(
            f"storage registry {path} is malformed ({e}); restore or remove it"
        ) from None
    return refs


def save_refs(path: Path, refs: Refs) -> None:
    doc: dict[str, Any] = {
        "images": refs.images,
        "containers": {
            cid: {"image": c.image, "chain": c.chain, "idmap": list(c.idmap) if c.idmap else None}
            for cid, c in sorted(refs.containers.items())
        },
    }
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True).encode(), mode=0o600)
