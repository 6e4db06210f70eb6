"""Import from an OCI layout dir, an oci-archive and a docker-archive; skopeo and umoci
read the result."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from lxcri_core.errors import ImportError_, PlatformError
from lxcri_core.images import import_image, inspect_image, list_images
from lxcri_core.media import OCI_LAYER, OCI_LAYER_GZIP
from lxcri_core.platforms import host_platform
from lxcri_core.store import Store
from lxcri_core.store.layout import INDEX_DIGEST_ANNOTATION
from tests.store.conftest import Sources, skopeo_inspect, skopeo_manifest_digest
from tests.support.images import (
    Entry,
    busybox_image,
    host_arch,
    make_tar,
    multilayer_image,
    sha256,
    write_layout,
)


def umoci_ls(store: Store) -> list[str]:
    proc = subprocess.run(
        ["umoci", "ls", "--layout", str(store.root)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_import_layout_dir(cfg, store, sources: Sources):
    rec = import_image(cfg, sources.layout, "busybox:1.0")
    assert rec.name == "docker.io/library/busybox:1.0"
    assert rec.descriptor.digest == sources.built.manifest_digest
    assert rec.descriptor.platform is not None and str(rec.descriptor.platform) == "linux/amd64"
    assert skopeo_manifest_digest(f"oci:{store.root}:{rec.name}") == rec.descriptor.digest
    assert umoci_ls(store) == [rec.name]
    # every blob the manifest names is in the store, under its digest
    for d in sources.built.blobs:
        assert store.read_blob(d) == sources.built.blobs[d]


def test_import_oci_archive_keeps_digest(cfg, store, sources: Sources):
    want = skopeo_manifest_digest(f"oci-archive:{sources.oci_archive}")
    rec = import_image(cfg, sources.oci_archive, "127.0.0.1:5000/team/bb:7")
    assert rec.name == "127.0.0.1:5000/team/bb:7"
    assert rec.descriptor.digest == want
    info = skopeo_inspect(f"oci:{store.root}:{rec.name}")
    assert info["Digest"] == want and info["Architecture"] == "amd64"
    assert umoci_ls(store) == [rec.name]


def test_import_docker_archive_converts_to_oci(cfg, store, sources: Sources, tmp_path: Path):
    rec = import_image(cfg, sources.docker_archive)  # the name comes from RepoTags
    assert rec.name == "docker.io/test/multi:2.0"
    d = inspect_image(cfg, rec.name)
    cfg_doc = json.loads(store.read_blob(d.config_digest))
    # layers are the uncompressed tars: their digests are the config's diff_ids
    assert [la.digest for la in d.layers] == cfg_doc["rootfs"]["diff_ids"]
    assert {la.media_type for la in d.layers} == {OCI_LAYER}
    assert [la.diff_id for la in d.layers] == [la.diff_id for la in multilayer_image().layers]
    assert skopeo_inspect(f"oci:{store.root}:{rec.name}")["Layers"] == [
        la.digest for la in d.layers
    ]
    # umoci unpacks the converted image: the layers apply, whiteouts included
    bundle = tmp_path / "bundle"
    proc = subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:{rec.name}", str(bundle)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "data" / "keep.txt").read_text() == "keep\n"
    assert not (rootfs / "data" / "gone.txt").exists()
    assert (rootfs / "opq" / "new.txt").exists() and not (rootfs / "opq" / "old.txt").exists()


def test_docker_archive_name_flag_overrides(cfg, sources: Sources):
    rec = import_image(cfg, sources.docker_archive, "mine:1")
    assert rec.name == "docker.io/library/mine:1"


def _docker_archive(path: Path, layers: list[tuple[str, bytes]], config: bytes, tags: list[str]):
    """A docker-archive written by hand (newer docker's blobs/sha256 names)."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))

        cfg_name = f"blobs/sha256/{sha256(config).split(':')[1]}"
        add(cfg_name, config)
        for name, data in layers:
            add(name, data)
        manifest = [{"Config": cfg_name, "RepoTags": tags, "Layers": [n for n, _ in layers]}]
        add("manifest.json", json.dumps(manifest).encode())


def test_docker_archive_with_compressed_layer(cfg, store, tmp_path: Path):
    plain = make_tar([Entry("a.txt", data=b"a\n")])
    second = make_tar([Entry("b.txt", data=b"b\n")])
    zipped = gzip.compress(second, mtime=0)
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(plain), sha256(second)]},
        }
    ).encode()
    archive = tmp_path / "d.tar"
    _docker_archive(
        archive,
        [("l1/layer.tar", plain), (f"blobs/sha256/{sha256(zipped)[7:]}", zipped)],
        config,
        ["example.com/x/y:3"],
    )
    rec = import_image(cfg, archive)
    assert rec.name == "example.com/x/y:3"
    d = inspect_image(cfg, rec.name)
    assert [(la.digest, la.media_type) for la in d.layers] == [
        (sha256(plain), OCI_LAYER),
        (sha256(zipped), OCI_LAYER_GZIP),
    ]
    assert d.platform == "linux/arm64"
    assert skopeo_inspect(f"oci:{store.root}:{rec.name}")["Architecture"] == "arm64"


def test_pick_by_tag_among_several(cfg, tmp_path: Path):
    lay = tmp_path / "two"
    one = write_layout(lay, busybox_image(Cmd=["one"]), tag="1")
    two = write_layout(lay, busybox_image(Cmd=["two"]), tag="2")
    assert import_image(cfg, lay, "x:2").descriptor.digest == two.manifest_digest
    assert import_image(cfg, lay, "x:1").descriptor.digest == one.manifest_digest
    with pytest.raises(ImportError_, match=r"holds 2 images \(1, 2\).*--name"):
        import_image(cfg, lay, "x:3")


def test_full_reference_ref_name_gives_the_name(cfg, tmp_path: Path):
    lay = tmp_path / "full"
    write_layout(lay, busybox_image(), tag="registry.lan/team/app:5")
    assert import_image(cfg, lay).name == "registry.lan/team/app:5"
    bare = tmp_path / "bare"
    write_layout(bare, busybox_image(), tag="5")
    with pytest.raises(ImportError_, match="--name"):
        import_image(cfg, bare)


def test_index_stores_host_platform_manifest(cfg, store, tmp_path: Path):
    amd = busybox_image(Cmd=["amd64"])
    arm = busybox_image(Cmd=["arm64"])
    arm.architecture = "arm64"
    lay = tmp_path / "idx"
    built = write_layout(lay, [amd, arm], tag="1.0")
    rec = import_image(cfg, lay, "multi:1.0")
    assert rec.descriptor.platform is not None
    assert rec.descriptor.platform.architecture == host_arch() == host_platform().architecture
    assert rec.descriptor.annotations[INDEX_DIGEST_ANNOTATION] == built.manifest_digest
    assert store.has_blob(built.manifest_digest)  # the index blob is kept ...
    assert store.gc() == (0, 0)  # ... and GC keeps it
    assert inspect_image(cfg, "multi:1.0").config["Cmd"] == [host_arch()]
    other = import_image(cfg, lay, "multi:arm", platform="linux/arm64")
    assert inspect_image(cfg, other.name).config["Cmd"] == ["arm64"]
    with pytest.raises(PlatformError, match="linux/amd64, linux/arm64"):
        import_image(cfg, lay, "multi:s390x", platform="linux/s390x")
    assert umoci_ls(store) == sorted(["docker.io/library/multi:1.0", "docker.io/library/multi:arm"])


def test_reimport_is_idempotent(cfg, store, sources: Sources):
    a = import_image(cfg, sources.oci_archive, "bb:1")
    blobs = sorted(store.blobs_dir.iterdir())
    b = import_image(cfg, sources.oci_archive, "bb:1")
    assert a == b and sorted(store.blobs_dir.iterdir()) == blobs
    assert [s.name for s in list_images(cfg)] == ["docker.io/library/bb:1"]


def test_name_with_digest_is_refused(cfg, sources: Sources):
    with pytest.raises(ImportError_, match="REPO"):
        import_image(cfg, sources.layout, f"bb@{sources.built.manifest_digest}")
