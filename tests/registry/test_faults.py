"""A misbehaving network and crashes: corrupt blobs, dropped connections, 5xx, 429,
kill -9 mid-pull, parallel pulls and mirrors. Proxies sit in front of a real registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from lxcri_core.errors import DigestMismatch, RateLimitError
from lxcri_core.registry import pull
from lxcri_core.store import Store
from tests.conftest import lxcri_exe
from tests.registry.conftest import Populated, insecure
from tests.registry.test_pull import assert_complete
from tests.support.images import Built, Entry, Image, Layer, busybox_image, make_tar
from tests.support.registry import BLOB_GET, FaultProxy, Seen, free_port, push_image

pytestmark = pytest.mark.slow
BIG = 8 << 20


@pytest.fixture(scope="module")
def big(registry: Populated, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """test/big:1.0: busybox plus one 8 MiB incompressible, uncompressed layer."""
    img: Image = busybox_image()
    img.layers.append(Layer(make_tar([Entry("blob.bin", data=os.urandom(BIG))]), "none"))
    return push_image(registry.addr, img, "test/big:1.0", tmp_path_factory.mktemp("big"))


@pytest.fixture
def proxy(registry: Populated) -> Iterator[FaultProxy]:
    with FaultProxy(registry.addr) as p:
        yield p


def big_layer(built: Built) -> str:
    return max(built.blobs, key=lambda d: len(built.blobs[d]))


def test_corrupt_blob_is_rejected_and_nothing_is_tagged(proxy: FaultProxy, cfg) -> None:
    proxy.faults.corrupt_blobs = True
    with pytest.raises(DigestMismatch, match="corrupt"):
        pull(cfg, f"{proxy.addr}/test/multi:1.0", insecure=True)
    store = Store(cfg.image_store)
    assert not store.images()
    assert not list(store.blobs_dir.iterdir())  # nothing unverified became visible
    assert not list(store.tmp_dir.glob("*.partial"))


def test_dropped_connection_resumes_with_range(proxy: FaultProxy, big: Built, cfg) -> None:
    proxy.faults.drop_blobs = 1
    ref = f"{proxy.addr}/test/big:1.0"
    rec = pull(cfg, ref, insecure=True)
    assert rec.descriptor.digest == big.manifest_digest
    assert_complete(Store(cfg.image_store), ref)
    # Whichever big blob came first was cut halfway; it alone was asked for twice.
    by_blob: dict[str, list[Seen]] = {}
    for s in proxy.blob_gets():
        by_blob.setdefault(s.path.rsplit("/", 1)[1], []).append(s)
    again = {d: gets for d, gets in by_blob.items() if len(gets) > 1}
    assert len(again) == 1
    [(digest, gets)] = again.items()
    assert len(gets) == 2 and "range" not in gets[0].headers
    offset = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset < len(big.blobs[digest])
    assert gets[1].status == 206


def test_5xx_is_retried(proxy: FaultProxy, cfg) -> None:
    proxy.faults.fail_503 = 3
    rec = pull(cfg, f"{proxy.addr}/test/bb:1.0", insecure=True)
    assert_complete(Store(cfg.image_store), rec.name)
    assert [s.status for s in proxy.log[:3]] == [503, 503, 503]


def test_429_gives_a_clear_error(proxy: FaultProxy, cfg) -> None:
    proxy.faults.always_429 = True
    with pytest.raises(RateLimitError, match=r"rate-limiting.*429"):
        pull(cfg, f"{proxy.addr}/test/bb:1.0", insecure=True)


def _lxcri(*args: str) -> list[str]:
    return [lxcri_exe(), *args]


def test_kill_9_mid_pull_then_pull_again(proxy: FaultProxy, big: Built, cfg) -> None:
    proxy.faults.blob_delay = 0.05  # ~1.3 MB/s: the 8 MiB layer takes seconds
    ref = f"{proxy.addr}/test/big:1.0"
    store = Store(cfg.image_store)
    proc = subprocess.Popen(
        _lxcri("pull", "--insecure", ref), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    partial = store.tmp_dir / f"{big_layer(big).split(':')[1]}.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 512 << 10):
        assert proc.poll() is None, "pull finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not store.images()  # nothing named yet
    assert not store.has_blob(big_layer(big))
    left = partial.stat().st_size

    proxy.faults.blob_delay = 0
    rec = pull(cfg, ref, insecure=True)
    assert rec.descriptor.digest == big.manifest_digest
    assert_complete(store, ref)
    resumed = [s for s in proxy.blob_gets() if s.path.endswith(big_layer(big))][-1]
    assert int(resumed.headers["range"].removeprefix("bytes=").rstrip("-")) >= left


def test_eight_parallel_pulls_download_each_blob_once(
    proxy: FaultProxy, registry: Populated, cfg
) -> None:
    ref = f"{proxy.addr}/test/multi:1.0"
    procs = [
        subprocess.Popen(_lxcri("pull", "--insecure", "-o", "json", ref), stdout=subprocess.PIPE)
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8
    assert {json.loads(o)["digest"] for o in outs} == {registry.multi.manifest_digest}
    store = Store(cfg.image_store)
    assert [r.name for r in store.images()] == [ref]
    assert_complete(store, ref)
    gets = Counter(BLOB_GET.match(s.path).group(2) for s in proxy.blob_gets())  # type: ignore[union-attr]
    man = store.manifest(registry.multi.manifest_digest)
    assert gets == Counter({d.digest: 1 for d in (man.config, *man.layers)})


def test_mirrors_are_tried_in_order(proxy: FaultProxy, registry: Populated, cfg) -> None:
    dead = f"127.0.0.1:{free_port()}"
    cfg = insecure(cfg, registry.addr, dead, proxy.addr).with_overrides(
        mirrors={registry.addr: (dead, proxy.addr)}
    )
    rec = pull(cfg, f"{registry.addr}/test/bb:1.0")
    assert rec.name == f"{registry.addr}/test/bb:1.0"
    assert any(s.path == "/v2/test/bb/manifests/1.0" for s in proxy.log)
    assert proxy.blob_gets()  # the blobs came through the mirror too
