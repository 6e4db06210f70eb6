"""The PVE checker fails on what PVE refuses; export refuses what PVE cannot take.

The checker's own tests mutate a good export one way each (as a hostile or
careless producer would) and expect the check PVE applies to fail. The export
tests put hostile images straight into a real store (as a registry that
checks less than lxcri could leave them) and expect one clear refusal and no
file.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.digest import sha256_bytes
from lxcri_core.errors import DigestMismatch, PlatformError
from lxcri_core.images import export_image, import_image
from lxcri_core.media import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    dump_json,
)
from lxcri_core.store import Store
from tests.store.conftest import Sources, invoke
from tests.store.pve_oci_check import Rejected, check_pve_oci
from tests.support.images import Image, Layer, busybox_entries, host_arch, make_tar, write_layout

# -- the checker fails where PVE does ------------------------------------------------------------

Doc = dict[str, Any]


def _read(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            if f is not None:
                out[m.name] = f.read()
        return out


def _write(path: Path, members: dict[str, bytes], prefix: str = "", gz: bool = False) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            ti = tarfile.TarInfo(prefix + name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()) if gz else buf.getvalue())
    return path


def _blob(members: dict[str, bytes], digest: str) -> bytes:
    return members[f"blobs/sha256/{digest.split(':')[1]}"]


def _put(members: dict[str, bytes], data: bytes) -> Doc:
    d = sha256_bytes(data)
    members[f"blobs/sha256/{d.split(':')[1]}"] = data
    return {"digest": d, "size": len(data)}


def _mutate(
    members: dict[str, bytes],
    *,
    index: Callable[[Doc], None] | None = None,
    manifest: Callable[[Doc], None] | None = None,
    config: Callable[[Doc], None] | None = None,
) -> dict[str, bytes]:
    """Change the config, manifest or index and fix up the digests that name them."""
    out = dict(members)
    idx = json.loads(out["index.json"])
    man = json.loads(_blob(out, idx["manifests"][0]["digest"]))
    cfg = json.loads(_blob(out, man["config"]["digest"]))
    if config:
        config(cfg)
        man["config"].update(_put(out, json.dumps(cfg).encode()))
    if manifest:
        manifest(man)
    idx["manifests"][0].update(_put(out, json.dumps(man).encode()))
    if index:
        index(idx)
    out["index.json"] = json.dumps(idx).encode()
    return out


@pytest.fixture
def good(cfg, sources: Sources, tmp_path: Path) -> dict[str, bytes]:
    """The members of an export of a three-layer image (gzip, gzip, plain tar)."""
    import_image(cfg, sources.multi_layout, "multi:2")
    out = tmp_path / "good.tar"
    export_image(cfg, "multi:2", out)
    check_pve_oci(out, host_arch())
    return _read(out)


def _set_layer_type(mt: str) -> Callable[[Doc], None]:
    def f(man: Doc) -> None:
        man["layers"][0]["mediaType"] = mt

    return f


def _set(key: str, value: Any) -> Callable[[Doc], None]:
    def f(doc: Doc) -> None:
        doc[key] = value

    return f


def _entry_type(mt: str) -> Callable[[Doc], None]:
    def f(idx: Doc) -> None:
        idx["manifests"][0]["mediaType"] = mt

    return f


def _diff_ids(change: Callable[[list[str]], None]) -> Callable[[Doc], None]:
    def f(cfg: Doc) -> None:
        change(cfg["rootfs"]["diff_ids"])

    return f


def _docker_config(man: Doc) -> None:
    man["config"]["mediaType"] = DOCKER_CONFIG


MUTATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "docker manifest entry": ({"index": _entry_type(DOCKER_MANIFEST)}, "no entry of type"),
    "docker config": ({"manifest": _docker_config}, "Wrong media type"),
    "docker layer": ({"manifest": _set_layer_type(DOCKER_LAYER_GZIP)}, "which PVE skips"),
    "diff_id added": ({"config": _diff_ids(lambda d: d.append(d[0]))}, "4 diff_ids for 3"),
    "diff_ids swapped": ({"config": _diff_ids(lambda d: d.reverse())}, "uncompresses to"),
    "schemaVersion 1": ({"index": _set("schemaVersion", 1)}, "schemaVersion is 1"),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_checker_rejects_what_pve_rejects(good: dict[str, bytes], tmp_path: Path, case: str):
    kwargs, message = MUTATIONS[case]
    bad = _write(tmp_path / "bad.tar", _mutate(good, **kwargs))
    with pytest.raises(Rejected, match=message):
        check_pve_oci(bad)


def test_checker_rejects_layout_not_at_root_compressed_or_misnamed(good, tmp_path: Path):
    check_pve_oci(_write(tmp_path / "ok.tar", good))
    with pytest.raises(Rejected, match="no entry named exactly 'oci-layout'"):
        check_pve_oci(_write(tmp_path / "dot.tar", good, prefix="./"))
    with pytest.raises(Rejected, match="compressed"):
        check_pve_oci(_write(tmp_path / "gz.tar", good, gz=True))
    with pytest.raises(Rejected, match=r"\*\.tar"):
        check_pve_oci(_write(tmp_path / "x.tar.gz", good))


def test_checker_rejects_missing_or_changed_blobs(good: dict[str, bytes], tmp_path: Path):
    layer = next(iter(json.loads(_blob(good, _entry_digest(good)))["layers"]))
    name = f"blobs/sha256/{layer['digest'].split(':')[1]}"
    missing = {k: v for k, v in good.items() if k != name}
    with pytest.raises(Rejected, match="is missing"):
        check_pve_oci(_write(tmp_path / "m.tar", missing))
    changed = dict(good)
    changed[name] = bytes([good[name][0] ^ 1]) + good[name][1:]
    with pytest.raises(Rejected, match="does not match its digest"):
        check_pve_oci(_write(tmp_path / "c.tar", changed))


def _entry_digest(members: dict[str, bytes]) -> str:
    return str(json.loads(members["index.json"])["manifests"][0]["digest"])


def test_checker_picks_the_first_oci_manifest_for_the_arch(good, tmp_path: Path):
    """A Docker entry before the OCI one is skipped, as PVE does; a wrong arch is not."""

    def prepend_docker(idx: Doc) -> None:
        idx["manifests"].insert(0, {**idx["manifests"][0], "mediaType": DOCKER_MANIFEST})

    both = _write(tmp_path / "both.tar", _mutate(good, index=prepend_docker))
    assert check_pve_oci(both)["entry"]["mediaType"] == OCI_MANIFEST
    with pytest.raises(Rejected, match="for riscv64"):
        check_pve_oci(_write(tmp_path / "a.tar", good), "riscv64")


# -- export ------------------------------------------------------------------------------------


def test_zstd_and_plain_layers_are_kept(cfg, tmp_path: Path):
    tar = make_tar(busybox_entries())
    write_layout(tmp_path / "lay", Image([Layer(tar, "zstd")], {"Cmd": ["sh"]}), "1")
    import_image(cfg, tmp_path / "lay", "z:1")
    r = export_image(cfg, "z:1", tmp_path / "z.tar")
    assert not r.converted
    found = check_pve_oci(tmp_path / "z.tar", host_arch())
    assert found["manifest"]["layers"][0]["mediaType"].endswith("tar+zstd")


@pytest.mark.parametrize("name", ["x.tar.gz", "x.oci", "x", "x.TAR"])
def test_a_name_not_ending_in_tar_is_refused(cfg, sources: Sources, out: Path, name: str):
    import_image(cfg, sources.layout, "bb:1")
    res = invoke("export", "bb:1", str(out / name))
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "must end in .tar" in res.stderr
    assert f"use {out / 'x.tar'}" in res.stderr
    assert list(out.iterdir()) == []


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory to export into (tmp_path also holds the store)."""
    d = tmp_path / "out"
    d.mkdir()
    return d


def _store_image(
    cfg,
    name: str,
    *,
    layer_type: str = OCI_LAYER_GZIP,
    config_type: str = OCI_CONFIG,
    manifest_type: str = OCI_MANIFEST,
    arch: str = "",
    entry_platform: Platform | None = None,
    extra_diff_id: bool = False,
    config_pad: int = 0,
) -> Store:
    """Put an image straight into the store (no import checks), as a lax registry might."""
    store = Store(cfg.image_store).init()
    layer = Layer(make_tar(busybox_entries()))
    blob = gzip.compress(layer.tar, mtime=0)
    diff_ids = [layer.diff_id] * (2 if extra_diff_id else 1)
    config = dump_json(
        {
            "architecture": arch or host_arch(),
            "os": "linux",
            "config": {"Cmd": ["sh"], "Labels": {"pad": "x" * config_pad}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    manifest = dump_json(
        {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {
                "mediaType": config_type,
                "digest": sha256_bytes(config),
                "size": len(config),
            },
            "layers": [{"mediaType": layer_type, "digest": sha256_bytes(blob), "size": len(blob)}],
        }
    )
    store.put_bytes(blob)
    store.put_bytes(config)
    digest = store.put_bytes(manifest)
    store.tag(name, Descriptor(manifest_type, digest, len(manifest), {}, entry_platform))
    return store


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_type": DOCKER_FOREIGN_LAYER}, "foreign"),
        ({"layer_type": "application/vnd.oci.image.layer.nondistributable.v1.tar"}, "foreign"),
        ({"layer_type": "application/vnd.oci.image.layer.v1.tar+bzip2"}, "no OCI layer"),
        ({"layer_type": "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"}, "no OCI layer"),
        ({"config_type": "application/vnd.cncf.helm.config.v1+json"}, "not a container image"),
        ({"extra_diff_id": True}, "2 diff_ids for 1 layers"),
        ({"config_pad": 9 << 20}, "config is larger than"),
        ({"arch": "arm64", "entry_platform": Platform("linux", "amd64")}, "config says"),
    ],
)
def test_export_refuses_what_pve_cannot_take(cfg, out: Path, kwargs, message):
    if kwargs.get("arch") == host_arch():
        pytest.skip("the host is arm64: the lie would be the truth")
    _store_image(cfg, "hostile:1", **kwargs)
    res = invoke("export", "hostile:1", str(out / "h.tar"))
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and message in res.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "types",
    [
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP),
        (OCI_MANIFEST, OCI_CONFIG, DOCKER_LAYER_GZIP),  # mixed, as some tools write
        (OCI_MANIFEST, DOCKER_CONFIG, OCI_LAYER_GZIP),
    ],
)
def test_docker_types_from_a_store_are_converted(cfg, tmp_path: Path, types):
    manifest_type, config_type, layer_type = types
    store = _store_image(
        cfg, "d:1", manifest_type=manifest_type, config_type=config_type, layer_type=layer_type
    )
    r = export_image(cfg, "d:1", tmp_path / "d.tar")
    assert r.converted and r.source_digest == store.lookup("d:1").descriptor.digest
    found = check_pve_oci(tmp_path / "d.tar", host_arch())
    assert found["entry"]["annotations"]["io.lxcri.source.digest"] == r.source_digest


def test_another_platform_without_an_index_is_refused(cfg, tmp_path: Path):
    other = "arm64" if host_arch() != "arm64" else "amd64"
    _store_image(cfg, "arm:1", arch=other)
    with pytest.raises(PlatformError, match=f"give --platform linux/{other}"):
        export_image(cfg, "arm:1", tmp_path / "a.tar")
    r = export_image(cfg, "arm:1", tmp_path / "a.tar", platform=f"linux/{other}")
    assert check_pve_oci(tmp_path / "a.tar", other)["config"]["architecture"] == other
    assert r.platform == f"linux/{other}"


def test_a_blob_changed_in_the_store_is_not_exported(cfg, sources: Sources, out: Path):
    import_image(cfg, sources.layout, "bb:1")
    store = Store(cfg.image_store)
    man = store.manifest(store.lookup("docker.io/library/bb:1").descriptor.digest)
    p = store.blob_path(man.layers[0].digest)
    data = p.read_bytes()
    p.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(DigestMismatch, match="does not match its digest"):
        export_image(cfg, "bb:1", out / "bb.tar")
    p.write_bytes(data + b"x")
    with pytest.raises(DigestMismatch, match="descriptor says"):
        export_image(cfg, "bb:1", out / "bb.tar")
    assert list(out.iterdir()) == []
