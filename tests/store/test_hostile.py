"""Hostile or broken input: one clear ImportError_, the store unchanged, exit 1 from the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from lxcri_core.errors import ImportError_
from lxcri_core.images import import_image
from lxcri_core.store import Store
from tests.store.conftest import Sources, invoke, store_state
from tests.support.images import (
    Entry,
    Image,
    Layer,
    busybox_image,
    make_tar,
    sha256,
    write_layout,
)


def _copy_layout(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _layer_blob(layout: Path) -> Path:
    """The largest blob of a layout: the busybox layer."""
    return max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def _tar_of(layout: Path, out: Path, extra: tuple[tuple[str, bytes], ...] = ()) -> Path:
    with tarfile.open(out, "w") as tar:
        tar.add(layout, arcname=".")
        for name, data in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return out


def _corrupt_same_size(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))


@pytest.fixture
def seeded(cfg, store: Store, tmp_path: Path) -> tuple[list[str], list[str], list[str]]:
    """A store that already holds an image: a failed import must leave it exactly so.

    Its one layer is its own: a blob already in the store is not read again on
    import, so sharing one with the victims would hide their corruption.
    """
    seed = Image([Layer(make_tar([Entry("seed.txt", data=b"seed\n")]))])
    write_layout(tmp_path / "seed", seed, tag="1")
    import_image(cfg, tmp_path / "seed", "seed:1")
    return store_state(store)


def _assert_refused(cfg, store, path: Path, match: str, seeded_state) -> None:
    with pytest.raises(ImportError_, match=match) as exc:
        import_image(cfg, path, "victim:1")
    assert "\n" not in str(exc.value)
    assert store_state(store) == seeded_state
    res = invoke("import", str(path), "--name", "victim:1")
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("lxcri: error: cannot import")
    assert store_state(store) == seeded_state


def test_dotdot_member(cfg, store, sources: Sources, tmp_path: Path, seeded):
    bad = _tar_of(sources.layout, tmp_path / "dotdot.tar", (("../evil", b"x"),))
    _assert_refused(cfg, store, bad, r"'\.\./evil'.*absolute or '\.\.'", seeded)


def test_absolute_member(cfg, store, sources: Sources, tmp_path: Path, seeded):
    bad = _tar_of(sources.layout, tmp_path / "abs.tar", (("/etc/evil", b"x"),))
    _assert_refused(cfg, store, bad, "absolute", seeded)


def test_layer_digest_mismatch_in_dir(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    _corrupt_same_size(_layer_blob(lay))
    _assert_refused(cfg, store, lay, "failed verification.*corrupt", seeded)


def test_layer_digest_mismatch_in_archive(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    _corrupt_same_size(_layer_blob(lay))
    _assert_refused(cfg, store, _tar_of(lay, tmp_path / "c.tar"), "failed verification", seeded)


def test_second_layer_corrupt_rolls_back_the_first(
    cfg, store, sources: Sources, tmp_path: Path, seeded
):
    """The first layer is committed before the second fails: rollback deletes it again."""
    lay = _copy_layout(sources.multi_layout, tmp_path / "lay")
    manifest = json.loads((lay / "blobs/sha256" / sources.multi.manifest_digest[7:]).read_text())
    second = lay / "blobs/sha256" / manifest["layers"][1]["digest"][7:]
    _corrupt_same_size(second)
    _assert_refused(cfg, store, lay, "failed verification", seeded)
    assert not store.has_blob(manifest["layers"][0]["digest"])


def test_missing_blob(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    _layer_blob(lay).unlink()
    _assert_refused(cfg, store, lay, "missing", seeded)


def test_blob_size_differs_from_descriptor(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    with _layer_blob(lay).open("ab") as f:
        f.write(b"extra")
    _assert_refused(cfg, store, lay, "bytes, the manifest says", seeded)


def test_truncated_archive(cfg, store, sources: Sources, tmp_path: Path, seeded):
    data = sources.oci_archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    _assert_refused(cfg, store, cut, "truncated|missing", seeded)


def test_non_json_index(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    (lay / "index.json").write_text("{not json")
    _assert_refused(cfg, store, lay, "not valid JSON", seeded)


def test_non_json_docker_manifest(cfg, store, sources: Sources, tmp_path: Path, seeded):
    bad = tmp_path / "bad-docker.tar"
    with tarfile.open(sources.docker_archive) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            if m.name == "manifest.json":
                m.size = 3
                dst.addfile(m, io.BytesIO(b"[{]"))
            else:
                dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    _assert_refused(cfg, store, bad, "manifest.json is not valid JSON", seeded)


def test_docker_layer_not_matching_diff_id(cfg, store, sources: Sources, tmp_path: Path, seeded):
    bad = tmp_path / "bad-layer.tar"
    with tarfile.open(sources.docker_archive) as src, tarfile.open(bad, "w") as dst:
        members = src.getmembers()
        victim = max((m for m in members if m.isreg()), key=lambda m: m.size)
        for m in members:
            f = src.extractfile(m) if m.isreg() else None
            if m is victim:
                assert f is not None
                data = bytearray(f.read())
                data[len(data) // 2] ^= 0xFF  # same size, different digest
                f = io.BytesIO(bytes(data))
            dst.addfile(m, f)
    _assert_refused(cfg, store, bad, "failed verification", seeded)


def test_symlinked_blob_outside_layout(cfg, store, sources: Sources, tmp_path: Path, seeded):
    lay = _copy_layout(sources.layout, tmp_path / "lay")
    outside = tmp_path / "outside"
    victim = _layer_blob(lay)
    victim.rename(outside)
    victim.symlink_to(outside)
    _assert_refused(cfg, store, lay, "missing", seeded)


def test_not_an_image(cfg, store, tmp_path: Path, seeded):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(4096))
    _assert_refused(cfg, store, junk, "not a tar archive", seeded)
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    _assert_refused(cfg, store, empty, "neither an OCI layout", seeded)


def test_manifest_digest_mismatch(cfg, store, tmp_path: Path, seeded):
    lay = tmp_path / "lay"
    built = write_layout(lay, busybox_image(), tag="1")
    index = json.loads((lay / "index.json").read_text())
    fake = sha256(b"something else")
    (lay / "blobs/sha256" / fake[7:]).write_bytes(built.blobs[built.manifest_digest])
    index["manifests"][0]["digest"] = fake
    (lay / "index.json").write_text(json.dumps(index))
    _assert_refused(cfg, store, lay, "does not match its digest", seeded)


def test_missing_path_is_usage_error():
    res = invoke("import", "/nonexistent/x.tar", "--name", "a:1")
    assert res.exit_code == 2 and res.stdout == ""


def _docker_with_symlinked_layer(path: Path, link: str) -> None:
    """A docker-archive whose only layer is ``id/layer.tar``, a symlink to ``link``
    (``{layer}`` in it stands for the real layer file, as old docker saves it)."""
    layer = make_tar([Entry("f.txt", data=b"f\n")])
    layer_file = f"{sha256(layer)[7:]}.tar"
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": [sha256(layer)]}}
    ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((layer_file, layer), ("c.json", config)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("id/layer.tar")
        ti.type, ti.linkname = tarfile.SYMTYPE, link.format(layer=layer_file)
        tar.addfile(ti)
        manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["id/layer.tar"]}])
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(manifest)
        tar.addfile(ti, io.BytesIO(manifest.encode()))


def test_docker_layer_symlink_inside_is_followed(cfg, store, tmp_path: Path):
    good = tmp_path / "good.tar"
    _docker_with_symlinked_layer(good, "../{layer}")
    rec = import_image(cfg, good, "linked:1")
    assert rec.name == "docker.io/library/linked:1"
    with pytest.raises(ImportError_, match="give a name with --name"):
        import_image(cfg, good)  # RepoTags is null: nothing names it


def test_docker_layer_symlink_escaping_is_refused(cfg, store, tmp_path: Path, seeded):
    bad = tmp_path / "escape.tar"
    _docker_with_symlinked_layer(bad, "../../etc/passwd")
    _assert_refused(cfg, store, bad, "points outside the archive", seeded)
