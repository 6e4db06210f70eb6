"""Layer-chain replication between two "nodes" over the real ssh transport.

Each node is a network namespace with its own sshd (tests/support/sshnodes.py)
and its own zfs-fuse pool; lxcri reaches both only as ``ssh root@address``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lxcri_core.cluster.replicate import RECV, Replication, Side, replicate_chain
from lxcri_core.cluster.transport import SshNode
from lxcri_core.errors import StorageError
from lxcri_core.storage import open_backend
from lxcri_core.storage.chain import ImageChain
from tests.support.images import Entry, Layer, busybox_image, make_tar, multilayer_image
from tests.support.sshnodes import Lab, add_node

pytestmark = pytest.mark.slow


def zget(prop: str, ds: str) -> str:
    return subprocess.run(
        ["zfs", "get", "-Hp", "-o", "value", prop, ds], capture_output=True, text=True, check=True
    ).stdout.strip()


def layer_names(side: Side) -> list[str]:
    out = subprocess.run(
        ["zfs", "list", "-H", "-r", "-t", "all", "-o", "name", side.layers],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return sorted(n for n in out if n != side.layers)


def same_tree(chain: ImageChain, a: Side, b: Side) -> None:
    """``b`` holds ``chain`` as ``a`` does: same snapshots, properties and clone tree."""
    for i, layer in enumerate(chain.layers):
        ds = b.layer(layer.key)
        assert zget("guid", f"{ds}@layer") == zget("guid", f"{a.layer(layer.key)}@layer")
        assert zget("lxcri:key", ds) == layer.key
        assert zget("lxcri:diff_id", ds) == layer.diff_id
        assert zget("origin", ds) == (f"{b.layer(chain.keys[i - 1])}@layer" if i else "-")
        assert zget("canmount", ds) == "noauto"


@pytest.fixture
def nodes(ssh_lab: Lab, scratch_pool: str, scratch_pool_b: str) -> tuple[Side, Side]:
    return Side(add_node(ssh_lab, "node-a"), scratch_pool), Side(
        add_node(ssh_lab, "node-b"), scratch_pool_b
    )


def test_replicates_chain_over_ssh(nodes, cfg, store, put_image, tmp_path: Path) -> None:
    a, b = nodes
    digest = put_image(multilayer_image())
    chain = open_backend(cfg.with_overrides(zfs_pool=a.pool), "zfs").prepare_image(store, digest)
    r = replicate_chain(chain, a, b)
    assert r.complete and r.sent == list(chain.keys) and r.present == []
    same_tree(chain, a, b)
    assert not [n for n in layer_names(b) if RECV in n]
    # a second replication finds everything: nothing crosses the wire
    again = replicate_chain(chain, a, b)
    assert again.complete and again.sent == [] and again.wire_bytes == 0
    assert again.present == list(chain.keys)
    # node B's zfs backend uses the received chain as its own: no unpack, same snapshots
    guids = [zget("guid", f"{b.layer(k)}@layer") for k in chain.keys]
    be_b = open_backend(cfg.with_overrides(zfs_pool=b.pool, root=tmp_path / "node-b"), "zfs")
    assert be_b.prepare_image(store, digest).keys == chain.keys
    assert [zget("guid", f"{b.layer(k)}@layer") for k in chain.keys] == guids
    rootfs = be_b.create_rootfs(chain, "100")
    assert zget("origin", rootfs.dataset or "") == f"{b.layer(chain.key)}@layer"
    assert (rootfs.path / "bin" / "busybox").is_file()
    assert (rootfs.path / "opq" / "new.txt").is_file()


def test_sends_only_missing_layers(nodes, cfg, store, put_image) -> None:
    a, b = nodes
    base = busybox_image()
    top = busybox_image()
    top.layers.append(Layer(make_tar([Entry("extra.txt", data=b"more\n")])))
    be = open_backend(cfg.with_overrides(zfs_pool=a.pool), "zfs")
    small = be.prepare_image(store, put_image(base, "t/base:1"))
    big = be.prepare_image(store, put_image(top, "t/top:1"))
    first = replicate_chain(small, a, b)
    second = replicate_chain(big, a, b)
    assert second.present == [small.key] and second.sent == [big.key]
    # the incremental stream of one small file, not the busybox layer again
    assert second.wire_bytes < first.wire_bytes / 4
    same_tree(big, a, b)


def test_mismatched_property_is_refused(nodes, cfg, store, put_image, tmp_path: Path) -> None:
    a, b = nodes
    digest = put_image(multilayer_image())
    chain = open_backend(cfg.with_overrides(zfs_pool=a.pool), "zfs").prepare_image(store, digest)
    assert replicate_chain(chain, a, b).complete
    middle = b.layer(chain.keys[1])
    subprocess.run(["zfs", "set", "lxcri:diff_id=sha256:" + "0" * 64, middle], check=True)
    before = layer_names(b)
    r = replicate_chain(chain, a, b)
    assert not r.complete and "lxcri:diff_id" in (r.fallback or "") and r.sent == []
    # refused, not replaced: the node's datasets are left for a pull (and an admin) to sort out
    assert layer_names(b) == before
    # nor does node B's zfs backend build a container on it
    be_b = open_backend(cfg.with_overrides(zfs_pool=b.pool, root=tmp_path / "node-b"), "zfs")
    with pytest.raises(StorageError, match="diff_id"):
        be_b.prepare_image(store, digest)
    # a sender whose layer says it is another one sends nothing
    subprocess.run(
        ["zfs", "set", "lxcri:key=sha256:" + "1" * 64, a.layer(chain.keys[0])], check=True
    )
    with pytest.raises(StorageError, match="lxcri:key"):
        replicate_chain(chain, a, Side(b.node, b.pool + "/other"))


def find_pids(words: list[str]) -> list[int]:
    """PIDs of processes whose argv holds all of ``words`` (ours or sshd's children)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = d.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"zfs") and all(w.encode() in argv for w in words):
            out.append(int(d.name))
    return out


@pytest.mark.parametrize("victim", ["send", "recv"])
def test_kill_9_mid_stream_then_retry(
    victim, ssh_lab, scratch_pool, scratch_pool_b, cfg, store, put_image
) -> None:
    a = Side(add_node(ssh_lab, "node-a"), scratch_pool)
    b = Side(add_node(ssh_lab, "node-b"), scratch_pool_b)
    img = busybox_image()
    img.layers.append(Layer(make_tar([Entry("big.bin", data=os.urandom(24 << 20))]), "none"))
    chain = open_backend(cfg.with_overrides(zfs_pool=a.pool), "zfs").prepare_image(
        store, put_image(img)
    )
    big = chain.layers[-1]
    outcome: list[Replication | BaseException] = []

    def run() -> None:
        try:
            outcome.append(replicate_chain(chain, a, b, bwlimit=4 << 20))
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    words = (
        ["send", a.layer(big.key)]  # zfs-fuse's zfs cuts its argv at the "@" it sends
        if victim == "send"
        else ["recv", b.layer(big.key, tmp=True)]
    )
    deadline = time.monotonic() + 30
    while not (pids := find_pids(words)) and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.02)
    assert pids, f"the stream of the big layer never started: {outcome}"
    # a 6 s stream at 4 MiB/s; the sender is ahead of the pump by what the pipes and the
    # TCP buffers hold (a few MiB), so it is still sending in the first seconds
    time.sleep(random.uniform(0.1, 2.0))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    t.join(120)
    assert isinstance(outcome[0], StorageError), outcome
    # the bottom layer arrived whole; the big one is not there under its name
    assert f"{b.layer(big.key)}@layer" not in layer_names(b)
    assert f"{b.layer(chain.keys[0])}@layer" in layer_names(b)
    r = replicate_chain(chain, a, b)
    assert r.complete and r.sent == [big.key] and r.present == [chain.keys[0]]
    same_tree(chain, a, b)
    assert not [n for n in layer_names(b) if RECV in n]


REPLICATOR = """
import json, sys
from lxcri_core.config import load_config
from lxcri_core.store.layout import Store
from lxcri_core.storage.chain import load_chain
from lxcri_core.cluster.replicate import Side, replicate_chain
from lxcri_core.cluster.transport import SshNode

digest, a, b = json.loads(sys.argv[1])
sides = [Side(SshNode(**n), p) for n, p in (a, b)]
chain = load_chain(Store(load_config().image_store), digest)
replicate_chain(chain, *sides, bwlimit=4 << 20)
"""


def test_kill_9_of_the_replicator_then_retry(
    ssh_lab, scratch_pool, scratch_pool_b, cfg, store, put_image
) -> None:
    """lxcri itself killed mid-stream: a half-received ``tmp-recv-`` may stay; the
    next attempt removes it and completes."""
    import json
    import sys

    a = Side(add_node(ssh_lab, "node-a"), scratch_pool)
    b = Side(add_node(ssh_lab, "node-b"), scratch_pool_b)
    img = busybox_image()
    img.layers.append(Layer(make_tar([Entry("big.bin", data=os.urandom(24 << 20))]), "none"))
    digest = put_image(img)
    chain = open_backend(cfg.with_overrides(zfs_pool=a.pool), "zfs").prepare_image(store, digest)
    big = chain.layers[-1]

    def node(side: Side) -> list[object]:
        n = side.node
        assert isinstance(n, SshNode)
        fields = {"name": n.name, "address": n.address, "port": n.port}
        return [
            {**fields, "identity": str(n.identity), "known_hosts": str(n.known_hosts)},
            side.pool,
        ]

    proc = subprocess.Popen(
        [sys.executable, "-c", REPLICATOR, json.dumps([digest, node(a), node(b)])],
        cwd=Path(__file__).resolve().parents[2],
    )
    words = ["recv", b.layer(big.key, tmp=True)]
    deadline = time.monotonic() + 60
    while not find_pids(words) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert find_pids(words), "the stream of the big layer never started"
    time.sleep(random.uniform(0.1, 3.0))
    proc.kill()
    proc.wait()
    # its ssh clients lose their pump; wait for the receive they fed to end
    deadline = time.monotonic() + 60
    while find_pids(words) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"{b.layer(big.key)}@layer" not in layer_names(b)
    r = replicate_chain(chain, a, b)
    assert r.complete and r.sent == [big.key]
    same_tree(chain, a, b)
    assert not [n for n in layer_names(b) if RECV in n]
