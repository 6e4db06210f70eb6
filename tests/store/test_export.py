"""Export to oci-archive: skopeo and umoci read it; import/export/import keeps the digest."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from lxcri_core.errors import ImageNotFound, StoreError
from lxcri_core.images import export_image, import_image, inspect_image
from lxcri_core.media import REF_NAME
from tests.store.conftest import Sources, invoke, skopeo, skopeo_inspect


def test_export_is_an_oci_archive_peers_read(cfg, sources: Sources, tmp_path: Path):
    rec = import_image(cfg, sources.docker_archive, "app:2")
    out = tmp_path / "app.tar"
    export_image(cfg, "app:2", out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert names[0] == "oci-layout" and names[-1] == "index.json"
    (entry,) = index["manifests"]
    assert entry["annotations"] == {REF_NAME: "docker.io/library/app:2"}
    assert entry["digest"] == rec.descriptor.digest
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    info = skopeo_inspect(f"oci-archive:{out}")
    assert info["Digest"] == rec.descriptor.digest
    assert info["Layers"] == [la.digest for la in inspect_image(cfg, "app:2").layers]
    # umoci works on a layout: let skopeo copy the archive into one, then unpack it
    skopeo("copy", "-q", f"oci-archive:{out}", f"oci:{tmp_path / 'lay'}:x")
    proc = subprocess.run(
        ["umoci", "unpack", "--image", f"{tmp_path / 'lay'}:x", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bundle/rootfs/data/keep.txt").read_text() == "keep\n"


@pytest.mark.parametrize("source", ["layout", "oci_archive", "docker_archive"])
def test_round_trip_keeps_manifest_digest(cfg, sources: Sources, tmp_path: Path, source):
    first = import_image(cfg, getattr(sources, source), "rt:1")
    out = tmp_path / "rt.tar"
    export_image(cfg, "rt:1", out)
    again = import_image(cfg, out, "rt:2")
    assert again.descriptor.digest == first.descriptor.digest
    assert again.descriptor.platform == first.descriptor.platform
    # the exported ref name is the full reference, so the name can be left out
    invoke("rmi", "rt:1")
    assert import_image(cfg, out).name == "docker.io/library/rt:1"
    # exporting twice gives the same bytes
    out2 = tmp_path / "rt2.tar"
    export_image(cfg, "rt:1", out2)
    assert out2.read_bytes() == out.read_bytes()


def test_export_failure_leaves_no_file(cfg, sources: Sources, tmp_path: Path):
    import_image(cfg, sources.layout, "bb:1")
    with pytest.raises(StoreError, match="cannot export"):
        export_image(cfg, "bb:1", tmp_path / "no-such-dir" / "x.tar")
    with pytest.raises(StoreError, match="is a directory"):
        export_image(cfg, "bb:1", tmp_path)
    with pytest.raises(ImageNotFound):
        export_image(cfg, "nope:1", tmp_path / "nope.tar")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tar")) == []
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_replaces_an_existing_file_atomically(cfg, sources: Sources, tmp_path: Path):
    import_image(cfg, sources.layout, "bb:1")
    out = tmp_path / "bb.tar"
    out.write_text("old")
    res = invoke("export", "bb:1", str(out))
    assert res.exit_code == 0 and res.stdout.startswith("Exported ") and res.stderr == ""
    assert skopeo_inspect(f"oci-archive:{out}")["Digest"] == sources.built.manifest_digest
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_cli_json_and_errors(cfg, sources: Sources, tmp_path: Path):
    import_image(cfg, sources.layout, "bb:1")
    out = tmp_path / "bb.tar"
    res = invoke("export", "-o", "json", "bb:1", str(out))
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["digest"] == sources.built.manifest_digest and doc["size"] == out.stat().st_size
    res = invoke("export", "missing:1", str(tmp_path / "m.tar"))
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "not found in the store" in res.stderr
    assert invoke("export", "bb:1").exit_code == 2
