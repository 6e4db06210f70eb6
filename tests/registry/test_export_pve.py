"""Images pulled in Docker schema 2 form export as archives Proxmox VE 9.1 reads.

Pushed to a real docker-registry with ``skopeo copy --format v2s2``, pulled
with lxcri (which keeps the Docker media types), exported, then checked with
tests/store/pve_oci_check.py; skopeo and umoci read the result and an import
of it has the original's layers.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.errors import PlatformError
from lxcri_core.images import export_image, import_image, inspect_image
from lxcri_core.media import DOCKER_MANIFEST, OCI_MANIFEST, REF_NAME
from lxcri_core.registry.pull import pull
from lxcri_core.store.exporter import SOURCE_DIGEST_ANNOTATION
from tests.registry.conftest import Populated
from tests.store.conftest import invoke, skopeo, skopeo_inspect
from tests.store.pve_oci_check import check_pve_oci
from tests.support.images import busybox_image, host_arch, multilayer_image
from tests.support.registry import push_image


def _index(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        f = tar.extractfile("index.json")
        assert f is not None
        doc = json.load(f)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def docker_multi(registry: Populated, tmp_path: Path) -> str:
    """test/dmulti:1 in Docker schema 2 form: three layers (gzip, gzip, plain tar)."""
    push_image(registry.addr, multilayer_image(), "test/dmulti:1", tmp_path, docker_format=True)
    return f"{registry.addr}/test/dmulti:1"


def test_docker_schema2_image_exports_as_pve_accepts(cfg, docker_multi: str, tmp_path: Path):
    rec = pull(cfg, docker_multi, insecure=True)
    assert rec.descriptor.media_type == DOCKER_MANIFEST  # what most of Docker Hub gives
    original = inspect_image(cfg, docker_multi)
    out = tmp_path / "dmulti.tar"
    res = export_image(cfg, docker_multi, out)
    found = check_pve_oci(out, host_arch())
    # a new manifest, with OCI types, that says where it came from
    assert res.converted and res.digest != rec.descriptor.digest
    assert res.source_digest == rec.descriptor.digest
    (entry,) = _index(out)["manifests"]
    assert entry["mediaType"] == OCI_MANIFEST and entry["digest"] == res.digest
    assert entry["annotations"] == {
        REF_NAME: docker_multi,
        SOURCE_DIGEST_ANNOTATION: rec.descriptor.digest,
    }
    assert entry["platform"] == {"architecture": host_arch(), "os": "linux"}
    # config and layer blobs are the store's bytes: same digests, same diff_ids
    assert found["manifest"]["config"]["digest"] == original.config_digest
    assert [la["digest"] for la in found["manifest"]["layers"]] == [
        la.digest for la in original.layers
    ]
    assert found["config"]["rootfs"]["diff_ids"] == [la.diff_id for la in original.layers]
    # exporting twice gives the same bytes (the converted manifest is stable)
    again = tmp_path / "again.tar"
    export_image(cfg, docker_multi, again)
    assert again.read_bytes() == out.read_bytes()


def test_export_is_read_by_skopeo_umoci_and_lxcri_import(cfg, docker_multi: str, tmp_path: Path):
    pull(cfg, docker_multi, insecure=True)
    original = inspect_image(cfg, docker_multi)
    out = tmp_path / "dmulti.tar"
    res = export_image(cfg, docker_multi, out)
    info = skopeo_inspect(f"oci-archive:{out}")
    assert info["Digest"] == res.digest
    assert info["Layers"] == [la.digest for la in original.layers]
    lay = tmp_path / "lay"
    skopeo("copy", "-q", f"oci-archive:{out}", f"oci:{lay}:x")
    proc = subprocess.run(
        ["umoci", "unpack", "--image", f"{lay}:x", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "bundle/rootfs"
    assert (rootfs / "data/keep.txt").read_text() == "keep\n"
    assert not (rootfs / "data/gone.txt").exists()
    assert (rootfs / "opq/new.txt").exists() and not (rootfs / "opq/old.txt").exists()
    # lxcri import of the export: the same layers, under the converted digest
    back = import_image(cfg, out, "back:1")
    assert back.descriptor.digest == res.digest
    imported = inspect_image(cfg, "back:1")
    assert [la.diff_id for la in imported.layers] == [la.diff_id for la in original.layers]
    assert [la.digest for la in imported.layers] == [la.digest for la in original.layers]
    # and it exports unchanged: already OCI, nothing to convert, digest kept
    res2 = export_image(cfg, "back:1", tmp_path / "back.tar")
    assert not res2.converted and res2.digest == res.digest
    (entry,) = _index(tmp_path / "back.tar")["manifests"]
    assert SOURCE_DIGEST_ANNOTATION not in entry["annotations"]


def test_cli_says_it_converted(cfg, docker_multi: str, tmp_path: Path):
    rec = pull(cfg, docker_multi, insecure=True)
    out = tmp_path / "x.tar"
    res = invoke("export", docker_multi, str(out))
    assert res.exit_code == 0, res.stderr
    assert res.stderr.count("\n") == 1 and "Converted" in res.stderr
    assert rec.descriptor.digest in res.stderr
    assert res.stdout.startswith("Exported ")
    res = invoke("export", "-o", "json", docker_multi, str(out))
    doc = json.loads(res.stdout)
    assert doc["converted"] is True and doc["source_digest"] == rec.descriptor.digest
    assert doc["digest"] == skopeo_inspect(f"oci-archive:{out}")["Digest"]
    assert doc["size"] == out.stat().st_size and doc["platform"] == f"linux/{host_arch()}"
    check_pve_oci(out, host_arch())


def test_multi_arch_exports_the_target_platform_only(cfg, registry: Populated, tmp_path: Path):
    amd, arm = busybox_image(Cmd=["echo amd64"]), busybox_image(Cmd=["echo arm64"])
    arm.architecture = "arm64"
    push_image(registry.addr, [amd, arm], "test/dlist:1", tmp_path, docker_format=True)
    ref = f"{registry.addr}/test/dlist:1"
    other = "arm64" if host_arch() != "arm64" else "amd64"
    rec = pull(cfg, ref, insecure=True, platform=f"linux/{other}")
    out = tmp_path / "x.tar"
    # an image for another platform than the node's is refused, with the way out
    with pytest.raises(PlatformError, match=f"pull --platform linux/{host_arch()}"):
        export_image(cfg, ref, out)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    res = invoke("export", ref, str(out))
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "--platform" in res.stderr
    # naming the node's platform exports it
    r = export_image(cfg, ref, out, platform=f"linux/{other}")
    assert r.platform == f"linux/{other}" and r.source_digest == rec.descriptor.digest
    check_pve_oci(out, other)
    # once the host's manifest is in the store too, the host's is exported, alone
    host_rec = pull(cfg, ref, insecure=True)
    pull(cfg, ref, insecure=True, platform=f"linux/{other}")  # the name is the other's again
    r = export_image(cfg, ref, out)
    assert r.source_digest == host_rec.descriptor.digest and r.platform == f"linux/{host_arch()}"
    (entry,) = _index(out)["manifests"]
    assert entry["platform"]["architecture"] == host_arch()
    check_pve_oci(out, host_arch())
    assert json.loads(skopeo("inspect", "--config", f"oci-archive:{out}"))["config"]["Cmd"] == [
        f"echo {host_arch()}"
    ]
