"""The unpacker's value types: the id map and per-layer statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxcri_core.errors import UnpackError

if TYPE_CHECKING:
    from lxcri_core.config import Config

#: Proxmox's default map for unprivileged containers (``lxc.idmap = u 0 100000 65536``).
PVE_BASE = 100000
PVE_COUNT = 65536


@dataclass(frozen=True)
class IdMap:
    """Container ids ``0..count-1`` map to host ids ``base..base+count-1`` (uid and gid)."""

    base: int = PVE_BASE
    count: int = PVE_COUNT

    def __post_init__(self) -> None:
        if self.base < 0 or self.count < 1 or self.base + self.count > 2**32 - 1:
            raise UnpackError(
                f"invalid id map {self.base}:{self.count}; need BASE >= 0, COUNT >= 1 "
                "and BASE+COUNT below 2^32-1"
            )

    def host(self, cid: int, what: str) -> int:
        """The host id of container id ``cid``; ``what`` names the entry for the error."""
        if not 0 <= cid < self.count:
            raise UnpackError(
                f"{what}: id {cid} is outside the container id range 0..{self.count - 1} of "
                f"the id map {self.base}:{self.count}; use a larger COUNT"
            )
        return self.base + cid

    @classmethod
    def parse(cls, text: str) -> IdMap:
        """``BASE:COUNT`` as given on the command line."""
        base, sep, count = text.partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(int(base), int(count))
        except ValueError:
            raise UnpackError(
                f"invalid id map {text!r}: expected BASE:COUNT, e.g. 100000:65536"
            ) from None


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
