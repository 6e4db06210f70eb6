"""The store as a layout on disk: verified blobs, atomic index, GC."""

from __future__ import annotations

import json
import threading

import pytest

from lxcri_core.digest import sha256_bytes
from lxcri_core.errors import DigestMismatch, ImageNotFound
from lxcri_core.media import OCI_MANIFEST, Descriptor, dump_json
from lxcri_core.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "s").init()


def _image(store: Store, payload: bytes) -> Descriptor:
    layer = store.put_bytes(payload)
    cfg = store.put_bytes(b'{"rootfs":{"type":"layers","diff_ids":[]}}')
    man = dump_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg,
                "size": 41,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer,
                    "size": len(payload),
                }
            ],
        }
    )
    return Descriptor(OCI_MANIFEST, store.put_bytes(man), len(man))


def test_layout_files(store):
    assert json.loads((store.root / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    assert json.loads((store.root / "index.json").read_text())["manifests"] == []


def test_wrong_digest_leaves_nothing(store):
    with pytest.raises(DigestMismatch):
        store.put_bytes(b"abc", sha256_bytes(b"abd"))
    assert list(store.blobs_dir.iterdir()) == []
    assert not list(store.tmp_dir.glob("*.partial"))


def test_oversize_blob_rejected(store):
    d = sha256_bytes(b"abcdef")
    with pytest.raises(DigestMismatch), store.blob_writer(d, 3) as w:
        assert w is not None
        w.write(b"abcdef")
    assert not store.has_blob(d)


def test_interrupted_writer_resumes(store):
    data = b"x" * 1000 + b"y" * 1000
    d = sha256_bytes(data)
    with pytest.raises(ConnectionError), store.blob_writer(d, len(data)) as w:
        assert w is not None
        w.write(data[:700])
        raise ConnectionError("dropped")
    assert not store.has_blob(d)
    with store.blob_writer(d, len(data)) as w:
        assert w is not None and w.offset == 700
        w.write(data[700:])
    assert store.read_blob(d) == data


def test_tag_lookup_untag_gc(store):
    a = _image(store, b"layer-a")
    b = _image(store, b"layer-b")
    store.tag("docker.io/library/a:1", a)
    store.tag("docker.io/library/b:1", b)
    assert [r.name for r in store.images()] == ["docker.io/library/a:1", "docker.io/library/b:1"]
    store.tag("docker.io/library/a:1", b)  # retag replaces
    assert store.lookup("docker.io/library/a:1").descriptor.digest == b.digest
    store.untag("docker.io/library/b:1")
    assert store.gc()[0] == 2  # a's manifest and layer; the config is shared with b
    assert store.has_blob(b.digest)
    with pytest.raises(ImageNotFound, match="lxcri pull"):
        store.lookup("docker.io/library/b:1")


def test_concurrent_writers_store_one_copy(store):
    data = b"z" * (1 << 20)
    d = sha256_bytes(data)
    errors: list[BaseException] = []

    def put():
        try:
            store.put_bytes(data, d)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in store.blobs_dir.iterdir()] == [d.split(":")[1]]
