"""``--pve-register``: the container appears as a Proxmox CT on the pve-local backend (the
Proxmox simulator's /etc/pve and pvesh) and disappears with it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pvesim.fixtures import PveSim, start_sim
from tests.runtime.conftest import RUNTIME, Rt
from tests.support.ocibundle import base_config


@pytest.fixture
def sim() -> Iterator[PveSim]:
    s = start_sim()
    try:
        yield s
    finally:
        s.close()


def _env(sim: PveSim) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{sim.bin}:{os.environ['PATH']}",
        "PVESIM_DIR": str(sim.dir),
        "LXCRI_PVE_ROOT": str(sim.dir / "etc-pve"),
        "LXCRI_PVE_NODE": "pve1",
    }


def _runtime(rt: Rt, sim: PveSim, *args: str) -> subprocess.CompletedProcess[bytes]:
    with open(os.devnull, "wb") as null, open(rt.base / "err", "wb") as err:
        proc = subprocess.run(
            [RUNTIME, "--root", str(rt.root), *args],
            stdout=null, stderr=err, stdin=subprocess.DEVNULL, env=_env(sim), timeout=60,
        )  # fmt: skip
    proc.stderr = (rt.base / "err").read_bytes()
    return proc


def _confs(sim: PveSim) -> dict[int, str]:
    d = sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc"
    return {int(p.stem): p.read_text() for p in d.glob("*.conf")} if d.is_dir() else {}


def test_annotation_registers_and_delete_unregisters(rt: Rt, sim: PveSim) -> None:
    cfg = base_config(["sleep", "30"])
    cfg["annotations"] = {"org.lxcri.pve-register": "true"}
    b = rt.bundle("b", cfg)
    before = _confs(sim)
    proc = _runtime(rt, sim, "create", "--bundle", str(b), "--pid-file", str(rt.base / "pid"), "c1")
    assert proc.returncode == 0, proc.stderr
    new = {v: t for v, t in _confs(sim).items() if v not in before}
    assert len(new) == 1
    vmid, text = next(iter(new.items()))
    assert vmid >= 100
    assert "hostname: c1\n" in text and "tags: containerd\n" in text
    assert f"rootfs: {b / 'rootfs'}\n" in text and "lock: mounted\n" in text
    assert (rt.root / "c1" / "pve-vmid").read_text() == str(vmid)
    pid = int((rt.base / "pid").read_text())
    assert _runtime(rt, sim, "start", "c1").returncode == 0
    assert _runtime(rt, sim, "delete", "--force", "c1").returncode == 0
    rt.wait_exit(pid)
    assert vmid not in _confs(sim)


def test_flag_registers_and_a_reused_vmid_is_left_alone(rt: Rt, sim: PveSim) -> None:
    b = rt.bundle("b", base_config(["true"]))
    proc = _runtime(rt, sim, "--pve-register", "create", "--bundle", str(b), "c1")
    assert proc.returncode == 0, proc.stderr
    vmid = int((rt.root / "c1" / "pve-vmid").read_text())
    conf = sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{vmid}.conf"
    conf.write_text("arch: amd64\nhostname: someone-else\n")  # the VMID went to another CT
    assert _runtime(rt, sim, "delete", "--force", "c1").returncode == 0
    assert conf.read_text() == "arch: amd64\nhostname: someone-else\n"


def test_without_a_proxmox_host_create_fails_and_leaves_nothing(rt: Rt, tmp_path: Path) -> None:
    cfg = base_config(["true"])
    cfg["annotations"] = {"org.lxcri.pve-register": "true"}
    b = rt.bundle("b", cfg)
    env = {**os.environ, "LXCRI_PVE_ROOT": str(tmp_path / "no-pve")}
    with open(os.devnull, "wb") as null, open(rt.base / "err", "wb") as err:
        proc = subprocess.run(
            [RUNTIME, "--root", str(rt.root), "create", "--bundle", str(b), "c1"],
            stdout=null, stderr=err, env=env, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "is not a Proxmox VE cluster file system" in (rt.base / "err").read_text()
    assert not (rt.root / "c1").exists()
