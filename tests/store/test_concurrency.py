"""Concurrent imports (real processes) and an import killed with SIGKILL mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lxcri_core.store import Store
from tests.conftest import lxcri_exe, run_lxcri
from tests.store.conftest import skopeo, skopeo_manifest_digest, store_state
from tests.support.images import Entry, Layer, busybox_image, make_tar, write_layout

LXCRI = lxcri_exe()
BIG = 24 << 20  # bytes of random data in the big layer


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """An oci-archive of busybox plus two uncompressed random layers; (path, blob count)."""
    work = tmp_path_factory.mktemp("big")
    img = busybox_image()
    for n in range(2):
        data = os.urandom(BIG // 2)
        img.layers.append(Layer(make_tar([Entry(f"rand{n}.bin", data=data)]), "none"))
    write_layout(work / "lay", img, tag="1")
    archive = work / "big.tar"
    skopeo("copy", "-q", f"oci:{work / 'lay'}:1", f"oci-archive:{archive}:1")
    return archive, 1 + 1 + len(img.layers)  # manifest, config, layers


def _index(store: Store) -> list[dict[str, object]]:
    doc = json.loads((store.root / "index.json").read_text())
    assert isinstance(doc["manifests"], list)
    return doc["manifests"]


@pytest.mark.slow
def test_eight_concurrent_imports(store: Store, big_archive: tuple[Path, int]):
    archive, nblobs = big_archive
    procs = [
        subprocess.Popen(
            [LXCRI, "import", str(archive), "--name", f"big:{i % 2}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    names, blobs, partials = store_state(store)
    assert sorted(names) == ["docker.io/library/big:0", "docker.io/library/big:1"]
    assert len(blobs) == nblobs and partials == []
    entries = _index(store)
    assert len(entries) == 2 and len({e["digest"] for e in entries}) == 1
    # nothing left over in tmp/ but lock files
    assert {p.suffix for p in store.tmp_dir.iterdir()} <= {".lock"}
    want = skopeo_manifest_digest(f"oci-archive:{archive}")
    assert skopeo_manifest_digest(f"oci:{store.root}:docker.io/library/big:1") == want
    assert store.gc() == (0, 0)


# The child runs the real import with one function wrapped so that it stops
# at a known point and says so; the test then kills it with SIGKILL.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lxcri_core.store import layout

    archive, marker, stage = sys.argv[1:4]

    def stop_here():
        Path(marker).write_text("stopped")
        time.sleep(3600)

    if stage == "mid-blob":
        orig_write = layout.BlobWriter.write

        def write(self, data):
            orig_write(self, data)
            if self.size and self.size > (1 << 22) and self.offset >= (1 << 21):
                self._f.flush()
                stop_here()

        layout.BlobWriter.write = write
    else:
        layout.Store.tag = lambda self, name, desc: stop_here()

    from lxcri_pve.cli.main import main
    sys.argv = ["lxcri", "import", archive, "--name", "big:1"]
    main()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["mid-blob", "before-tag"])
def test_kill_9_mid_import(store: Store, big_archive: tuple[Path, int], tmp_path: Path, stage):
    archive, nblobs = big_archive
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(archive), str(marker), stage],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not marker.exists():  # the child reaches its stop point
            assert child.poll() is None, child.communicate()[1]
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    names, blobs, partials = store_state(store)
    assert names == []
    if stage == "mid-blob":
        assert len(partials) == 1  # the interrupted blob is not visible under blobs/
        assert partials[0].removesuffix(".partial") not in blobs
    else:
        assert len(blobs) == nblobs  # all verified, none referenced yet
    res = run_lxcri("images", "-o", "json")
    assert res.returncode == 0 and json.loads(res.stdout) == []

    res = run_lxcri("import", str(archive), "--name", "big:1")
    assert res.returncode == 0, res.stderr
    names, blobs, partials = store_state(store)
    assert names == ["docker.io/library/big:1"] and len(blobs) == nblobs and partials == []
    want = skopeo_manifest_digest(f"oci-archive:{archive}")
    assert skopeo_manifest_digest(f"oci:{store.root}:docker.io/library/big:1") == want
    assert run_lxcri("image", "prune").returncode == 0
    assert store_state(store) == (names, blobs, [])


def test_in_use_lease_blocks_exclusive(store: Store):
    """Imports hold the shared lease; prune and rollback (exclusive) cannot start meanwhile."""
    import fcntl

    store.init()
    fd = os.open(store.tmp_dir / "gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with store.in_use():
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # other imports may run
            fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the lease ends
    finally:
        os.close(fd)
