"""images, inspect, rmi, image ls/inspect/rm/prune through the CLI; name and digest lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lxcri_core.errors import ImageNotFound, StoreError
from lxcri_core.images import (
    PrunedItem,
    PruneResult,
    import_image,
    inspect_image,
    list_images,
    prune_images,
    remove_image,
)
from lxcri_core.store import Store
from lxcri_core.store.resolve import find_records
from tests.conftest import run_lxcri
from tests.store.conftest import Sources, invoke
from tests.support.images import Entry, Image, Layer, make_tar, write_layout


@pytest.fixture
def two(cfg, sources: Sources) -> tuple[str, str]:
    """busybox:1.0 (one gzip layer) and test/multi:2.0 (three plain layers)."""
    a = import_image(cfg, sources.layout, "busybox:1.0").descriptor.digest
    b = import_image(cfg, sources.docker_archive).descriptor.digest
    return a, b


def test_images_table_and_json(two):
    a, b = two
    res = invoke("images")
    assert res.exit_code == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PLATFORM"]
    rows = [line.split() for line in lines[1:]]
    assert [r[:3] for r in rows] == [["busybox", "1.0", a[7:19]], ["test/multi", "2.0", b[7:19]]]
    assert all(r[-1] == "linux/amd64" for r in rows)
    doc = json.loads(invoke("images", "-o", "json").stdout)
    assert [(i["name"], i["digest"]) for i in doc] == [
        ("docker.io/library/busybox:1.0", a),
        ("docker.io/test/multi:2.0", b),
    ]
    assert all(i["size"] > 1_000_000 for i in doc)
    assert json.loads(invoke("image", "ls", "-o", "json").stdout) == doc
    assert b in invoke("images", "--no-trunc").stdout


def test_images_on_an_empty_store():
    res = invoke("images", "-o", "json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []


def test_inspect_forms(cfg, two, sources: Sources):
    a, _ = two
    d = inspect_image(cfg, "busybox:1.0")
    assert d.digest == a and d.platform == "linux/amd64"
    assert d.config["Cmd"] == ["echo hello"] and len(d.layers) == 1
    assert d.size == sum(len(v) for v in sources.built.blobs.values())
    for form in ("docker.io/library/busybox:1.0", "library/busybox:1.0", a, a[7:19], a[:11]):
        assert inspect_image(cfg, form).digest == a, form
    assert inspect_image(cfg, f"busybox@{a}").digest == a
    with pytest.raises(ImageNotFound, match="lxcri pull"):
        inspect_image(cfg, "busybox")  # :latest is not there
    with pytest.raises(ImageNotFound):
        inspect_image(cfg, a[7:10])  # too short to be taken as a prefix


def test_inspect_cli(two):
    a, _ = two
    res = invoke("inspect", a[7:19])
    assert res.exit_code == 0
    assert f"Digest:     {a}" in res.stdout and "Layers:" in res.stdout
    doc = json.loads(invoke("inspect", "-o", "json", "test/multi:2.0").stdout)
    assert [la["media_type"] for la in doc["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar"
    ] * 3
    assert doc["config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert json.loads(invoke("image", "inspect", "-o", "json", "test/multi:2.0").stdout) == doc
    res = invoke("inspect", "nginx")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr == (
        "lxcri: error: no such container or image: nginx (no container of that name or id: "
        "see `lxcri ps -a`; image docker.io/library/nginx:latest not found in the store; "
        "run `lxcri pull nginx` or `lxcri import` first)\n"
    )


def test_ambiguous_prefix(cfg, store: Store, tmp_path: Path):
    # 17 images: two of them must share the first hex digit of their digest.
    by_first: dict[str, list[str]] = {}
    for i in range(17):
        img = Image([Layer(make_tar([Entry("n.txt", data=str(i).encode())]), "none")])
        write_layout(tmp_path / f"l{i}", img, tag="1")
        d = import_image(cfg, tmp_path / f"l{i}", f"img{i}:1").descriptor.digest
        by_first.setdefault(d[7], []).append(d)
    first, shared = next((k, v) for k, v in by_first.items() if len(v) > 1)
    with pytest.raises(ImageNotFound, match=f"matches {len(shared)} images; give more digits"):
        find_records(store, f"sha256:{first}")
    assert find_records(store, shared[0])[0].descriptor.digest == shared[0]


def test_rmi_frees_blobs_not_shared(cfg, store: Store, two, sources: Sources):
    a, _ = two
    import_image(cfg, sources.layout, "alias:1")  # same digest as busybox:1.0
    before = {p.name for p in store.blobs_dir.iterdir()}
    res = invoke("rmi", "busybox:1.0")
    assert res.exit_code == 0
    assert res.stdout == "Untagged: docker.io/library/busybox:1.0\n"  # alias:1 keeps the blobs
    assert {p.name for p in store.blobs_dir.iterdir()} == before
    res = invoke("rmi", "-o", "json", "alias:1", "test/multi:2.0")
    doc = json.loads(res.stdout)
    assert [r["untagged"] for r in doc] == [
        ["docker.io/library/alias:1"],
        ["docker.io/test/multi:2.0"],
    ]
    assert doc[0]["digest"] == a and a in doc[0]["deleted"] and doc[0]["freed"] > 1_000_000
    assert list(store.blobs_dir.iterdir()) == []
    assert list_images(cfg) == []


def test_rmi_by_shared_digest_needs_force(cfg, store: Store, sources: Sources):
    d = import_image(cfg, sources.layout, "x:1").descriptor.digest
    import_image(cfg, sources.layout, "y:1")
    with pytest.raises(StoreError, match=r"has 2 names.*--force"):
        remove_image(cfg, d)
    res = invoke("image", "rm", d[7:19])
    assert res.exit_code == 1 and "--force" in res.stderr and res.stdout == ""
    res = invoke("image", "rm", "--force", d[7:19])
    assert res.exit_code == 0
    assert res.stdout.splitlines()[:2] == [
        "Untagged: docker.io/library/x:1",
        "Untagged: docker.io/library/y:1",
    ]
    assert list(store.blobs_dir.iterdir()) == []


def test_rmi_missing_and_usage(two):
    res = invoke("rmi", "nope:1")
    assert res.exit_code == 1 and res.stdout == "" and res.stderr.count("\n") == 1
    assert invoke("rmi").exit_code == 2
    assert invoke("images", "-o", "yaml").exit_code == 2


def test_prune_removes_orphans_and_partials(cfg, store: Store, two):
    orphan = store.put_bytes(b"nobody references me")
    (store.tmp_dir / f"{'ab' * 32}.partial").write_bytes(b"half a layer")
    kept = {p.name for p in store.blobs_dir.iterdir()} - {orphan[7:]}
    res = invoke("image", "prune", "-o", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert {(i["kind"], i["id"]) for i in doc["items"]} == {
        ("blob", orphan),
        ("partial", f"sha256:{'ab' * 32}"),
    }
    assert doc["count"] == 2 and doc["freed"] == len(b"nobody references me") + 12
    assert {p.name for p in store.blobs_dir.iterdir()} == kept
    res = invoke("image", "prune")
    assert res.stdout == "Total reclaimed space: 0 B\n"
    assert [i.name for i in list_images(cfg)] == [
        "docker.io/library/busybox:1.0",
        "docker.io/test/multi:2.0",
    ]


def test_prune_steps_extension_point(cfg, two):
    seen = []

    def chains(c):
        seen.append(c)
        return PruneResult((PrunedItem("chain", "c1", 5),))

    from lxcri_core.images import prune_store_blobs

    result = prune_images(cfg, steps=[prune_store_blobs, chains])
    assert seen == [cfg]
    assert result.count == 1 and result.freed == 5 and result.items[0].kind == "chain"


def test_help_has_examples():
    for cmd in (["images"], ["inspect"], ["import"], ["export"], ["rmi"], ["image", "prune"]):
        res = invoke(*cmd, "--help")
        assert res.exit_code == 0 and "Examples:" in res.stdout, cmd


@pytest.mark.slow
def test_real_process_exit_codes_and_streams(sources: Sources, tmp_path: Path):
    ok = run_lxcri("import", str(sources.oci_archive), "--name", "bb:1", "-o", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["name"] == "docker.io/library/bb:1" and ok.stderr == ""
    bad = run_lxcri("import", str(tmp_path), "--name", "bb:2")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "neither an OCI layout" in bad.stderr
    usage = run_lxcri("import")
    assert usage.returncode == 2 and usage.stdout == ""


def test_damaged_image_still_listed_and_removable(cfg, store: Store, two):
    a, _ = two
    config = inspect_image(cfg, "busybox:1.0").config_digest
    store.blob_path(config).unlink()
    rows = {i.name: i for i in list_images(cfg)}
    assert rows["docker.io/library/busybox:1.0"].digest == a
    with pytest.raises(StoreError, match="missing"):
        inspect_image(cfg, "busybox:1.0")
    assert invoke("rmi", "busybox:1.0").exit_code == 0
    assert [i.name for i in list_images(cfg)] == ["docker.io/test/multi:2.0"]
