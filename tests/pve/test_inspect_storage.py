"""Proxmox storages in ``inspect-storage``: ``pvesm status`` (pve-local) and
``GET /nodes/{node}/storage`` (pve-api) with lxcri's volumes on each.

tests/data/pve/pvesm-status.txt is written from PVE::CLI::pvesm's print_status
(pve-storage's src/PVE/CLI/pvesm.pm: ``%-${maxlen}s %10s %10s %15s %15s %15s
%8s``, sizes /1024, ``disabled`` and ``N/A`` for a disabled storage); the
simulator's fake ``pvesm`` prints the same format from the same schema-checked
call the API answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxcri_pve.backends.pve_storage_status import (
    from_api,
    parse_pvesm_status,
    volume_ids,
    with_volumes,
)
from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

from lxcri_core.errors import BackendError
from tests.conftest import run_lxcri
from tests.pvesim.fixtures import PveSim, start_sim
from tests.support.lxcenv import make_dir

DATA = Path(__file__).resolve().parent.parent / "data" / "pve"


def test_parse_pvesm_status() -> None:
    backup, local, zfs = parse_pvesm_status((DATA / "pvesm-status.txt").read_text())
    assert (backup.id, backup.status, backup.total) == ("backup", "disabled", 0)
    assert (local.type, local.status, local.total) == ("dir", "active", 98497780 * 1024)
    assert (zfs.id, zfs.used, zfs.avail) == ("local-zfs", 35112104 * 1024, 414690784 * 1024)


@pytest.mark.parametrize(
    "text",
    [
        "Volid Format Type\nlocal dir active 1 2 3 4%\n",  # not pvesm status
        "Name Type Status Total Used Available %\nlocal dir active 1 2\n",
        "Name Type Status Total Used Available %\n-x dir active 1 2 3 4%\n",
        "Name Type Status Total Used Available %\nlocal dir active a b c 4%\n",
    ],
)
def test_parse_pvesm_status_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(BackendError, match="unexpected `pvesm status`"):
        parse_pvesm_status(text)


def test_api_entries_and_volumes() -> None:
    rows = from_api(
        [
            {"storage": "local", "type": "dir", "active": 1, "enabled": 1,
             "content": "rootdir,vztmpl", "total": 100, "used": 40, "avail": 60},
            {"storage": "nfs1", "type": "nfs", "active": 0, "enabled": 0},
            {"storage": "[red]x\n", "type": "dir"},  # no storage id PVE allows: dropped
            {"storage": "bad", "type": "dir", "total": "9" * 400, "used": True},
        ]
    )  # fmt: skip
    assert [r.id for r in rows] == ["bad", "local", "nfs1"]
    assert (rows[0].total, rows[0].used) == (None, None)  # not numbers: unknown
    assert rows[1].content == ("rootdir", "vztmpl") and rows[1].status == "active"
    assert rows[2].status == "disabled"
    confs = {
        105: {"rootfs": "local:105/subvol-105-disk-0.subvol,size=8G", "mp0": "/host/dir,mp=/d",
              "mp1": "local:105/subvol-105-disk-1.subvol,mp=/data", "net0": "name=eth0"},
        106: {"rootfs": "nfs1:subvol-106-disk-0"},
        107: {"rootfs": "local:x,size=1,size=2"},  # hand-edited, does not parse: skipped
    }  # fmt: skip
    # a bind mount (mp0, a host path) is no storage's volume
    assert volume_ids(confs[105]) == [
        "local:105/subvol-105-disk-1.subvol",
        "local:105/subvol-105-disk-0.subvol",
    ]
    vols = {r.id: r.volumes for r in with_volumes(rows, confs)}
    assert vols["local"] == tuple(volume_ids(confs[105]))
    assert vols["nfs1"] == ("nfs1:subvol-106-disk-0",) and vols["bad"] == ()


def _pvesm(sim: PveSim, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PVESIM_DIR": str(sim.dir)}
    return subprocess.run(
        [str(sim.bin / "pvesm"), *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def zsim(zfs_pool: str) -> Iterator[tuple[PveSim, str]]:
    """A simulator whose ``local-zfs`` is a dataset of the zfs-fuse test pool."""
    ds = f"{zfs_pool}/inspect{os.getpid()}"
    mnt = make_dir() / "zfs"
    subprocess.run(["zfs", "create", "-o", f"mountpoint={mnt}", ds], check=True)
    sim = start_sim(zfs_pool=ds)
    try:
        yield sim, ds
    finally:
        sim.close()
        subprocess.run(["zfs", "destroy", "-R", ds], capture_output=True)
        shutil.rmtree(mnt.parent, ignore_errors=True)


@pytest.mark.slow
def test_fake_pvesm_follows_the_schema(zsim: tuple[PveSim, str]) -> None:
    sim, ds = zsim
    res = _pvesm(sim, "status")
    assert res.returncode == 0, res.stderr
    rows = {r.id: r for r in parse_pvesm_status(res.stdout)}
    assert rows["local-zfs"].type == "zfspool" and rows["local-zfs"].status == "active"
    avail, used = (
        int(x)
        for x in subprocess.run(
            ["zfs", "get", "-o", "value", "-Hp", "available,used", ds],
            capture_output=True, text=True, check=True,
        ).stdout.split()
    )  # fmt: skip
    assert rows["local-zfs"].total == (avail + used) // 1024 * 1024  # KiB, as pvesm prints
    only = _pvesm(sim, "status", "--content", "vztmpl")
    assert [r.id for r in parse_pvesm_status(only.stdout)] == ["local"]
    bad = _pvesm(sim, "status", "--bogus", "1")
    assert bad.returncode == 255 and "Unknown option: bogus" in bad.stderr
    bad = _pvesm(sim, "status", "--storage", "-x")
    assert bad.returncode == 255 and "400 Parameter verification failed." in bad.stderr


def _env(sim: PveSim, root: Path, backend: str) -> dict[str, str]:
    return {**sim.lxcri_env(root, backend), "LXCRI_PVE_STORAGE": "local-zfs"}


@pytest.mark.slow
def test_inspect_storage_on_both_backends(zsim: tuple[PveSim, str]) -> None:
    """A CT created on pve-local with its rootfs on local-zfs: both backends list the
    storage with the CT's volume; the ZFS part shows its clone of the layer chain."""
    sim, ds = zsim
    d = make_dir()
    env = _env(sim, d, "pve-local")
    layout = d / "layout"
    build_demo_layout(layout)
    assert run_lxcri("import", str(layout), "--name", DEMO_REF, env=env).returncode == 0
    res = run_lxcri("create", "--name", "zinspect", DEMO_REF, env=env, timeout=180)
    assert res.returncode == 0, res.stderr
    vmid = int(res.stdout.strip().splitlines()[-1])
    try:
        volid = f"local-zfs:subvol-{vmid}-disk-0"
        for backend in ("pve-local", "pve-api"):
            out = run_lxcri("inspect-storage", "-o", "json", env={**env, "LXCRI_BACKEND": backend})
            assert out.returncode == 0, out.stderr
            doc = json.loads(out.stdout)
            st = {s["id"]: s for s in doc["pve_storages"]}
            assert volid in st["local-zfs"]["volumes"], (backend, st)
            assert st["local-zfs"]["status"] == "active" and st["local-zfs"]["total"] > 0
            clones = {c["container"]: c for c in doc["zfs"]["tree"]["clones"]}
            clone = clones[str(vmid)]
            assert clone["dataset"] == f"{ds}/subvol-{vmid}-disk-0"
            assert all(layer.startswith(f"{ds}/lxcri/layers/") for layer in clone["chain"])
        table = run_lxcri("inspect-storage", env=env)
        assert table.returncode == 0 and volid in table.stdout
    finally:
        run_lxcri("rm", "-f", str(vmid), env=env, timeout=180)
