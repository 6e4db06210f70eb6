"""The unpacker's value types: per-layer statistics, write limits; the id shift.

The id map itself is ``spec.model.IdMap`` (one class for every layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxcri_core.errors import UnpackError
from lxcri_core.spec.model import IdMap

if TYPE_CHECKING:
    from lxcri_core.config import Config


def shift(idmap: IdMap, cid: int, what: str) -> int:
    """The host id of container id ``cid``; ``what`` names the entry for the error."""
    host = idmap.host_id(cid)
    if host is None:
        raise UnpackError(
            f"{what}: id {cid} is outside the container id range {idmap.start}.."
            f"{idmap.start + idmap.count - 1} of the id map {idmap.host}:{idmap.count}; "
            "use a larger COUNT"
        )
    return host


@dataclass(frozen=True)
class LayerStats:
    """What one applied layer held: entries written, bytes of file content, its diff_id."""

    files: int
    bytes: int
    diff_id: str


@dataclass(frozen=True)
class WriteLimits:
    """How much a layer may write: the target filesystem's reserve and a hard cap.

    ``min_free`` is the config's ``unpack_min_free`` (``auto``: 5 % of the
    filesystem or 1 GiB, whichever is smaller; ``N%``; or a size such as
    ``2G``, ``0`` for none); ``max_bytes`` is ``max_layer_bytes`` (0: no cap).
    """

    min_free: str = "auto"
    max_bytes: int = 0

    @classmethod
    def from_config(cls, cfg: Config) -> WriteLimits:
        return cls(cfg.unpack_min_free, cfg.max_layer_bytes)
