"""``lxcri image distribute``: pre-seed other nodes with an image's layer chain.

The chain is prepared here with the zfs backend (unpacked once, if it is
not yet), then replicated to each node in turn (lxcri_core.cluster.replicate);
each node receives its layers into the zfspool of the same name, the usual
Proxmox layout, unless ``target_pool`` names another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_core.cluster.nodes import ClusterNode
from lxcri_core.cluster.replicate import Replication, Side, replicate_chain
from lxcri_core.cluster.transport import LocalNode, SshNode
from lxcri_core.errors import StorageError
from lxcri_core.log import get_logger

if TYPE_CHECKING:
    from lxcri_core.config import Config

log = get_logger(__name__)


@dataclass
class NodeResult:
    node: str
    replication: Replication | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.replication is not None and self.replication.complete

    def to_json(self) -> dict[str, Any]:
        r = self.replication
        return {
            "node": self.node,
            "ok": self.ok,
            "sent": r.sent if r else [],
            "present": r.present if r else [],
            "wire_bytes": r.wire_bytes if r else 0,
            "stream_bytes": r.stream_bytes if r else 0,
            "seconds": round(r.seconds, 3) if r else 0.0,
            "fallback": r.fallback if r else None,
            "error": self.error,
        }


def distribute(
    cfg: Config,
    image: str,
    nodes: list[ClusterNode],
    *,
    bwlimit: int | None = None,
    identity: Path | None = None,
    target_pool: str | None = None,
    compress: bool = True,
) -> list[NodeResult]:
    """Replicate ``image``'s chain (prepared here first) to each of ``nodes``."""
    from lxcri_core.images import resolve_or_pull
    from lxcri_core.storage import open_backend

    if not cfg.zfs_pool:
        raise StorageError("distributing an image needs the zfs storage backend (zfs_pool)")
    store, rec = resolve_or_pull(cfg, image, pull="never")
    chain = open_backend(cfg, "zfs").prepare_image(store, rec.descriptor.digest)
    known_hosts = cfg.pve_root / "priv" / "known_hosts"
    src = Side(LocalNode(), cfg.zfs_pool)
    out = []
    for node in nodes:
        dst = Side(
            SshNode(
                node.name,
                node.address,
                identity=identity,
                known_hosts=known_hosts if known_hosts.is_file() else None,
            ),
            target_pool or cfg.zfs_pool,
        )
        try:
            out.append(NodeResult(node.name, replicate_chain(chain, src, dst, bwlimit, compress)))
        except StorageError as e:
            log.warning("replication failed", node=node.name, error=str(e))
            out.append(NodeResult(node.name, error=str(e)))
    return out
