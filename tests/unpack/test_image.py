"""unpack_image and ``lxcri unpack``: resolution, staging, atomicity, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lxcri_core.errors import ImageNotFound, PlatformError, UnpackError
from lxcri_core.media import Descriptor
from lxcri_core.store import Store
from lxcri_core.unpack import IdMap, unpack_image, unpack_rootfs
from tests.support.images import (
    Entry,
    Image,
    Layer,
    build,
    busybox_image,
    host_arch,
    make_tar,
    multilayer_image,
)
from tests.unpack.helpers import snapshot, store_image


def invoke(*args: str) -> Result:
    """The CLI in-process with stderr apart from stdout (stdout holds only the output)."""
    from lxcri_pve.cli.main import cli

    return CliRunner(mix_stderr=False).invoke(cli, list(args), catch_exceptions=False)


def test_by_name_short_name_and_digest(tmp_path: Path) -> None:
    store = store_image(tmp_path / "store", multilayer_image())
    digest = store.lookup("docker.io/library/t:latest").descriptor.digest
    for i, ref in enumerate(["t", "docker.io/library/t:latest", digest, f"t@{digest}"]):
        unpack_image(store, ref, tmp_path / f"r{i}")
    assert snapshot(tmp_path / "r0") == snapshot(tmp_path / "r2") == snapshot(tmp_path / "r3")
    assert (tmp_path / "r1/opq/new.txt").read_bytes() == b"new\n"
    assert not (tmp_path / "r1/opq/old.txt").exists()
    assert not (tmp_path / "r1/data/gone.txt").exists()


def test_multi_arch_index_picks_the_host(tmp_path: Path) -> None:
    other = Image([Layer(make_tar([Entry("arch", data=b"other")]))], architecture="s390x")
    mine = Image([Layer(make_tar([Entry("arch", data=b"mine")]))], architecture=host_arch())
    store = Store(tmp_path / "store").init()
    built = build([other, mine])
    for d, data in built.blobs.items():
        store.put_bytes(data, d)
    store.tag("docker.io/library/multi:1", Descriptor(built.media_type, built.manifest_digest, 1))
    unpack_image(store, "multi:1", tmp_path / "r")
    assert (tmp_path / "r/arch").read_bytes() == b"mine"


def test_index_choice_is_the_one_pull_and_import_make(tmp_path: Path) -> None:
    """One host_platform/select_manifest: a variant the host lacks is skipped, an
    index without the host's platform is a PlatformError naming --platform."""
    a = Image([Layer(make_tar([Entry("arch", data=b"variant")]))], architecture=host_arch())
    b = Image([Layer(make_tar([Entry("arch", data=b"plain")]))], architecture=host_arch())
    built = build([a, b])
    idx = json.loads(built.blobs[built.manifest_digest])
    idx["manifests"][0]["platform"]["variant"] = "v99"
    store = Store(tmp_path / "store").init()
    for d, data in built.blobs.items():
        if d != built.manifest_digest:
            store.put_bytes(data, d)
    digest = store.put_bytes(json.dumps(idx).encode())
    store.tag("docker.io/library/multi:1", Descriptor(built.media_type, digest, 1))
    unpack_image(store, "multi:1", tmp_path / "r")
    assert (tmp_path / "r/arch").read_bytes() == b"plain"

    other = build([Image([Layer(make_tar([Entry("x", data=b"x")]))], architecture="s390x")])
    for d, data in other.blobs.items():
        store.put_bytes(data, d)
    store.tag("docker.io/library/s390:1", Descriptor(other.media_type, other.manifest_digest, 1))
    with pytest.raises(PlatformError, match="--platform"):
        unpack_image(store, "s390:1", tmp_path / "r2")
    assert not (tmp_path / "r2").exists()


def test_zstd_and_uncompressed_layers(tmp_path: Path) -> None:
    img = busybox_image()
    img.layers[0].compression = "zstd"
    img.layers.append(Layer(make_tar([Entry("extra", data=b"e")]), "none"))
    store = store_image(tmp_path / "store", img)
    unpack_image(store, "t", tmp_path / "r")
    assert (tmp_path / "r/extra").read_bytes() == b"e"
    assert os.access(tmp_path / "r/bin/busybox", os.X_OK)


def test_idmap_root_directory_belongs_to_container_root(tmp_path: Path) -> None:
    store = store_image(tmp_path / "store", busybox_image())
    unpack_image(store, "t", tmp_path / "r", idmap=IdMap())
    st = os.lstat(tmp_path / "r")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (100000, 100000, 0o755)
    assert {r["uid"] for r in snapshot(tmp_path / "r").values()} == {100000}


def test_target_must_not_exist(tmp_path: Path) -> None:
    store = store_image(tmp_path / "store", busybox_image())
    (tmp_path / "r").mkdir()
    with pytest.raises(UnpackError, match="already exists"):
        unpack_image(store, "t", tmp_path / "r")


def test_missing_image(tmp_path: Path) -> None:
    store = Store(tmp_path / "store").init()
    with pytest.raises(ImageNotFound, match="lxcri pull"):
        unpack_image(store, "nope:1", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_wrong_diff_id_leaves_nothing(tmp_path: Path) -> None:
    img = multilayer_image()

    class Lying(Layer):
        @property
        def diff_id(self) -> str:
            return "sha256:" + "ab" * 32

    img.layers[1] = Lying(img.layers[1].tar)
    store = store_image(tmp_path / "store", img)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnpackError, match="not its diff_id"):
        unpack_image(store, "t", work / "r")
    assert os.listdir(work) == []


def test_unpack_rootfs_returns_layer_stats(tmp_path: Path) -> None:
    img = multilayer_image()
    store = store_image(tmp_path / "store", img)
    stats = unpack_rootfs(store, "t", tmp_path / "r")
    assert [s.diff_id for s in stats] == [la.diff_id for la in img.layers]
    assert stats[1].bytes == len(b"keep\n") + len(b"to be deleted\n") + len(b"old\n")


def test_cli_unpack_json(tmp_path: Path, isolated_env: Path) -> None:
    img = multilayer_image()
    store_image(isolated_env / "images", img)
    r = invoke("unpack", "--unprivileged", "-o", "json", "t", str(tmp_path / "r"))
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["idmap"] == {"base": 100000, "count": 65536}
    assert [la["diff_id"] for la in doc["layers"]] == [la.diff_id for la in img.layers]
    assert doc["files"] == sum(la["files"] for la in doc["layers"])
    assert os.lstat(tmp_path / "r/data/keep.txt").st_uid == 100000


def test_cli_unpack_table_and_idmap(tmp_path: Path, isolated_env: Path) -> None:
    store_image(isolated_env / "images", busybox_image())
    r = invoke("unpack", "--idmap", "200000:65536", "t", str(tmp_path / "r"))
    assert r.exit_code == 0, r.stderr
    assert "sha256:" in r.stdout and "FILES" in r.stdout
    assert os.lstat(tmp_path / "r/bin/busybox").st_uid == 200000


def test_cli_errors(tmp_path: Path, isolated_env: Path) -> None:
    store_image(isolated_env / "images", busybox_image())
    r = invoke("unpack", "missing:1", str(tmp_path / "r"))
    assert r.exit_code == 1
    assert "missing:1 not found" in r.stderr and not r.stdout
    r = invoke("unpack", "--idmap", "bogus", "t", str(tmp_path / "r"))
    assert r.exit_code == 1 and "BASE:COUNT" in r.stderr
    r = invoke("unpack", "--idmap", "1:2", "--unprivileged", "t", str(tmp_path / "r"))
    assert r.exit_code == 2
    assert not (tmp_path / "r").exists()
