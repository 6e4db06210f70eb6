"""Layer-chain replication between two zfs-fuse pools on this host (LocalNode)."""

from __future__ import annotations

import subprocess

import pytest

from lxcri_core.cluster.replicate import Side, replicate_chain
from lxcri_core.cluster.transport import LocalNode
from lxcri_core.storage import open_backend
from tests.support.images import multilayer_image

pytestmark = pytest.mark.slow


def zget(prop: str, ds: str) -> str:
    return subprocess.run(
        ["zfs", "get", "-Hp", "-o", "value", prop, ds], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_local_replication(scratch_pool, scratch_pool_b, cfg, store, put_image) -> None:
    be = open_backend(cfg.with_overrides(zfs_pool=scratch_pool), "zfs")
    chain = be.prepare_image(store, put_image(multilayer_image()))
    a, b = Side(LocalNode("a"), scratch_pool), Side(LocalNode("b"), scratch_pool_b)
    r = replicate_chain(chain, a, b)
    assert r.complete and r.sent == list(chain.keys) and r.wire_bytes > 0
    # zstd on the wire: busybox compresses (the streams' bytes are what zfs send wrote)
    assert r.wire_bytes < r.stream_bytes / 2
    for i, layer in enumerate(chain.layers):
        ds = b.layer(layer.key)
        assert zget("guid", f"{ds}@layer") == zget("guid", f"{a.layer(layer.key)}@layer")
        assert zget("lxcri:key", ds) == layer.key
        assert zget("lxcri:diff_id", ds) == layer.diff_id
        assert zget("origin", ds) == (f"{b.layer(chain.keys[i - 1])}@layer" if i else "-")
    again = replicate_chain(chain, a, b)
    assert again.complete and again.sent == [] and again.wire_bytes == 0


def test_uncompressed_stream(scratch_pool, scratch_pool_b, cfg, store, put_image) -> None:
    be = open_backend(cfg.with_overrides(zfs_pool=scratch_pool), "zfs")
    chain = be.prepare_image(store, put_image(multilayer_image()))
    a, b = Side(LocalNode("a"), scratch_pool), Side(LocalNode("b"), scratch_pool_b)
    r = replicate_chain(chain, a, b, compress=False)
    assert r.complete and r.wire_bytes == r.stream_bytes > 0
