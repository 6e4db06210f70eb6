"""The image store is private: its blobs are every image's files (setuid
binaries of privileged images included) and may hold secrets baked into
layers. Directories 0700, blobs and partial downloads 0600; a store an older
lxcri made world-readable is tightened when it is next opened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lxcri_core.digest import sha256_bytes
from lxcri_core.store.layout import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_blobs_and_partials_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "images").init()
    for d in (store.root, store.root / "blobs", store.blobs_dir, store.tmp_dir):
        assert mode(d) == 0o700, d
    digest = store.put_bytes(b"a layer with a secret")
    assert mode(store.blob_path(digest)) == 0o600
    data = b"x" * 1000
    with pytest.raises(RuntimeError), store.blob_writer(sha256_bytes(data), len(data)) as w:
        assert w is not None
        w.write(data[:10])
        raise RuntimeError("connection lost")  # the partial stays, for a resume
    partials = list(store.tmp_dir.glob("*.partial"))
    assert partials and all(mode(p) == 0o600 for p in partials)


def test_an_older_world_readable_store_is_tightened(tmp_path: Path) -> None:
    store = Store(tmp_path / "images").init()
    digest = store.put_bytes(b"old blob")
    partial = store.tmp_dir / ("0" * 64 + ".partial")
    partial.write_bytes(b"half")
    for d in (store.root, store.root / "blobs", store.blobs_dir, store.tmp_dir):
        os.chmod(d, 0o755)
    os.chmod(partial, 0o644)
    Store(store.root).init()
    for d in (store.root, store.root / "blobs", store.blobs_dir, store.tmp_dir):
        assert mode(d) == 0o700, d
    assert store.read_blob(digest) == b"old blob"
    # a resumed partial is made private before more is written to it
    with store.blob_writer("sha256:" + "0" * 64, None) as w:
        assert w is not None
        assert mode(partial) == 0o600
        w.abort()
