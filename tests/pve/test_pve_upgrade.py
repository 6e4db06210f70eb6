"""upgrade, rollback and history on pve-local, against the Proxmox simulator with real CTs.

A "new version of the same tag" is a real push to a local docker-registry;
the CT's page (``/version``, ``/env.txt``, written by its entrypoint at each
start) is fetched through its published port from the host.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lxcri_core import faults
from lxcri_core.backend import CreateRequest, CtRef, ExecOptions, UpgradeRequest
from lxcri_core.errors import BackendError
from lxcri_core.lifecycle import upgrade as lifecycle_upgrade
from lxcri_core.spec.options import RunOptions
from tests.pve.test_pve_local import Env, _setup
from tests.pvesim.fixtures import free_port, start_sim
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar
from tests.support.lxcenv import make_dir, wait_for
from tests.support.registry import Registry, push_image, start_registry

START = "echo $APP_VERSION > /www/version; env > /www/env.txt; exec httpd -f -p 80 -h /www"


def app_image(version: str, start: str = START, extra_env: tuple[str, ...] = ()) -> Image:
    """busybox httpd; its version in a layer of its own, in a file and in the environment."""
    img = busybox_image(
        Entrypoint=["/bin/sh", "-c"],
        Cmd=[start],
        Env=["PATH=/bin", f"APP_VERSION={version}", "SHARED=image", *extra_env],
        WorkingDir="/www",
    )
    page = make_tar([Entry("www/index.html", data=f"page {version}\n".encode())])
    return Image([*img.layers, Layer(page)], img.config)


@dataclass
class Up:
    env: Env
    reg: Registry
    work: Path
    ref: str

    def push(self, version: str, start: str = START, extra_env: tuple[str, ...] = ()) -> str:
        img = app_image(version, start, extra_env)
        return push_image(self.reg.addr, img, self.repo_tag, self.work).manifest_digest

    @property
    def repo_tag(self) -> str:
        return self.ref.split("/", 1)[1]

    def get(self, port: int, path: str) -> str:
        try:
            with urllib.request.urlopen(
                f"http://{self.env.sim.gateway}:{port}/{path}", timeout=3
            ) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def serves(self, port: int, version: str) -> bool:
        return self.get(port, "version").strip() == version

    def exec(self, ct: str, *argv: str) -> str:
        cmd = self.env.be.exec_command(CtRef(ct), list(argv), ExecOptions())
        res = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def create(self, name: str, port: int, **kw: object) -> int:
        vmid = self.env.sim.vmid()
        opts = RunOptions(
            name=name,
            publish=(f"{port}:80",),
            ip=f"{self.env.sim.ip(20 + vmid % 100)}/24",
            gateway=self.env.sim.gateway,
            # httpd, PID 1, ignores SIGTERM: the stop would wait 10 s before killing it
            stop_timeout=1,
            **kw,  # type: ignore[arg-type]
        )
        req = CreateRequest(image=self.ref, options=opts, vmid=vmid, insecure=True)
        return self.env.be.create(req).vmid


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("upgrade-registry") / "reg")
    try:
        yield reg
    finally:
        reg.stop()


def _up(env: Env, reg: Registry, tmp_path: Path) -> Up:
    ref = f"{reg.addr}/test/app-{secrets.token_hex(4)}:1"
    up = Up(env, reg, tmp_path / "push", ref)
    up.work.mkdir()
    return up


@pytest.fixture
def up(registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Up]:
    sim = start_sim()
    try:
        yield _up(_setup(sim, monkeypatch, tmp_path), registry, tmp_path)
    finally:
        sim.close()


def _volumes_on_disk(up: Up, vmid: int) -> set[str]:
    d = _local_path(up) / "images" / str(vmid)
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def _local_path(up: Up) -> Path:
    text = (up.env.cfg.pve_root / "storage.cfg").read_text()
    m = re.search(r"^dir: local\n(?:\s+.*\n)*?\s+path (\S+)", text, re.M)
    assert m, text
    return Path(m.group(1))


def _conf_volumes(conf: str) -> set[str]:
    """The subvol names pct.conf refers to (rootfs, mpN, unusedN)."""
    return set(re.findall(r"subvol-\d+-disk-\d+\.subvol", conf))


@pytest.mark.slow
def test_upgrade_keeps_volume_port_settings_and_rollback_brings_the_old_image_back(
    up: Up,
) -> None:
    be = up.env.be
    v1 = up.push("1")
    port = free_port()
    vmid = up.create("app", port, volumes=("data:/data",), env=("MINE=kept", "SHARED=user"))
    be.config_set(CtRef("app"), {"memory": "256", "tags": "web;prod"})
    be.start(CtRef("app"))
    assert wait_for(lambda: up.serves(port, "1"), what="v1 answering")
    up.exec("app", "sh", "-c", "echo precious > /data/file")
    before = up.env.conf(vmid)
    keep = [
        ln
        for ln in before.splitlines()
        if ln.startswith(("mp0:", "net0:", "memory:", "tags:", "hookscript:", "unprivileged:"))
    ]
    assert len(keep) == 6, before

    v2 = up.push("2")
    res = lifecycle_upgrade(be, CtRef("app"), UpgradeRequest(insecure=True, health_timeout=30))
    assert (res.outcome, res.old_digest, res.new_digest, res.started) == ("upgraded", v1, v2, True)
    assert wait_for(lambda: up.serves(port, "2"), what="v2 answering")
    env = up.get(port, "env.txt")
    # the image's variable moved; the user's own and the one the user overrode stayed
    assert "APP_VERSION=2" in env and "MINE=kept" in env and "SHARED=user" in env, env
    assert up.get(port, "index.html") == "page 2\n"
    assert up.exec("app", "cat", "/data/file") == "precious\n"
    after = up.env.conf(vmid)
    for line in keep:
        assert line in after.splitlines(), (line, after)
    assert f"rootfs: local:{vmid}/subvol-{vmid}-disk-" in after
    assert f"unused0: local:{vmid}/subvol-{vmid}-disk-0.subvol" in after
    st = be.status(CtRef("app"))
    assert (st.image_digest, st.status) == (v2, "running")
    gens = be.history(CtRef("app"))
    assert [(g.number, g.image_digest, g.current) for g in gens] == [(2, v2, True), (1, v1, False)]

    again = be.upgrade(CtRef("app"), UpgradeRequest(insecure=True))
    assert (again.outcome, again.message) == ("unchanged", f"already at {v2}")
    assert be.status(CtRef("app")).status == "running"  # left running

    back = be.rollback(CtRef("app"))
    assert (back.outcome, back.new_digest, back.started) == ("rolled-back", v1, True)
    assert wait_for(lambda: up.serves(port, "1"), what="v1 answering again")
    env = up.get(port, "env.txt")
    assert "APP_VERSION=1" in env and "MINE=kept" in env, env
    assert up.exec("app", "cat", "/data/file") == "precious\n"
    final = up.env.conf(vmid)
    assert f"rootfs: local:{vmid}/subvol-{vmid}-disk-0.subvol" in final and "unused" not in final
    assert [(g.image_digest, g.current) for g in be.history(CtRef("app"))] == [(v1, True)]
    # the discarded generation's volume is gone; the data volume stayed
    assert _volumes_on_disk(up, vmid) == _conf_volumes(final)
    with pytest.raises(BackendError, match="no earlier generation"):
        be.rollback(CtRef("app"))


@pytest.mark.slow
def test_a_new_image_whose_process_exits_is_rolled_back_by_itself(up: Up) -> None:
    be = up.env.be
    v1 = up.push("1")
    port = free_port()
    vmid = up.create("flaky", port)
    be.start(CtRef("flaky"))
    assert wait_for(lambda: up.serves(port, "1"), what="v1 answering")
    up.push("broken", start="exit 3")
    res = lifecycle_upgrade(be, CtRef("flaky"), UpgradeRequest(insecure=True, health_timeout=20))
    assert res.outcome == "rolled-back", res
    assert "exited" in res.message and v1 in res.message, res.message
    assert wait_for(lambda: up.serves(port, "1"), what="v1 answering after the rollback")
    gens = be.history(CtRef("flaky"))
    assert [(g.image_digest, g.current) for g in gens] == [(v1, True)]
    assert _volumes_on_disk(up, vmid) == _conf_volumes(up.env.conf(vmid))


@pytest.mark.slow
def test_a_hostile_new_image_is_refused_before_the_ct_is_touched(up: Up) -> None:
    be = up.env.be
    v1 = up.push("1")
    port = free_port()
    vmid = up.create("guarded", port)
    be.start(CtRef("guarded"))
    assert wait_for(lambda: up.serves(port, "1"), what="v1 answering")
    before = up.env.conf(vmid)
    # a control character in a variable would end the line in pct.conf: a config line of
    # the image's choosing (a raw lxc.* key, a bind mount of the host)
    up.push("2", extra_env=("EVIL=x\nlxc.mount.entry: / host none bind 0 0",))
    with pytest.raises(BackendError, match="environment variable 'EVIL'") as e:
        be.upgrade(CtRef("guarded"), UpgradeRequest(insecure=True))
    assert "\n" not in str(e.value)
    assert up.env.conf(vmid) == before and be.status(CtRef("guarded")).image_digest == v1
    assert up.serves(port, "1")  # never stopped
    assert _volumes_on_disk(up, vmid) == _conf_volumes(before)  # what was built is gone
    assert not (up.env.state_dir(vmid) / "upgrade.journal").exists()


@pytest.mark.slow
def test_keep_generations_prunes_the_oldest(up: Up) -> None:
    be = up.env.be
    be.cfg = dataclasses.replace(be.cfg, keep_generations=1)
    v1 = up.push("1")
    vmid = up.create("pruned", free_port())  # never started: upgrade leaves it stopped
    v2 = up.push("2")
    r2 = be.upgrade(CtRef("pruned"), UpgradeRequest(insecure=True))
    assert (r2.outcome, r2.started) == ("upgraded", False)
    v3 = up.push("3")
    assert be.upgrade(CtRef("pruned"), UpgradeRequest(insecure=True)).outcome == "upgraded"
    gens = be.history(CtRef("pruned"))
    assert [(g.number, g.image_digest, g.current) for g in gens] == [(3, v3, True), (2, v2, False)]
    conf = up.env.conf(vmid)
    assert f"subvol-{vmid}-disk-0" not in conf  # generation 1 (v1) is gone, volume and all
    assert _volumes_on_disk(up, vmid) == _conf_volumes(conf) and len(_conf_volumes(conf)) == 2
    assert v1 not in json.dumps([dataclasses.asdict(g) for g in gens])
    # an explicit other reference works too, and it is the image that counts
    r = be.upgrade(CtRef("pruned"), UpgradeRequest(image=up.ref, insecure=True, pull="never"))
    assert r.outcome == "unchanged"


_CRASH_SCRIPT = """
import sys
from lxcri_core.backend import CtRef, UpgradeRequest, open_backend
from lxcri_core.config import load_config
be = open_backend(load_config(), "pve-local")
if sys.argv[1] == "upgrade":
    be.upgrade(CtRef(sys.argv[2]), UpgradeRequest(insecure=True))
else:
    be.rollback(CtRef(sys.argv[2]))
"""

UPGRADE_STEPS = (
    "upgrade-build",
    "upgrade-built",
    "upgrade-stopped",
    "upgrade-journal",
    "upgrade-conf",
    "upgrade-state",
    "upgrade-discarded",
)
ROLLBACK_STEPS = (
    "rollback-stopped",
    "rollback-journal",
    "rollback-conf",
    "rollback-state",
    "rollback-discarded",
)


def _killed_at(up: Up, op: str, vmid: int, step: str) -> None:
    env = {**os.environ, faults.ENV: step}
    res = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, op, str(vmid)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == -9, (step, res.returncode, res.stderr)


@pytest.mark.exhaustive
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_at_each_step_leaves_a_startable_ct_and_the_next_run_finishes(up: Up) -> None:
    be = up.env.be
    v1 = up.push("1")
    port = free_port()
    vmid = up.create("crashy", port)
    v2 = up.push("2")
    ref = CtRef(str(vmid))

    def starts_on_one_image() -> str:
        if be.status(ref).status != "running":
            be.start(ref)
        assert wait_for(lambda: up.get(port, "version").strip() in ("1", "2"), what="answering")
        return up.get(port, "version").strip()

    for step in UPGRADE_STEPS:
        be.start(ref)
        _killed_at(up, "upgrade", vmid, step)
        starts_on_one_image()
        done = be.upgrade(ref, UpgradeRequest(insecure=True))  # finishes or redoes it
        assert done.outcome in ("upgraded", "unchanged"), (step, done)
        assert be.status(ref).image_digest == v2, step
        assert wait_for(lambda: up.serves(port, "2"), what=f"v2 after {step}")
        assert _volumes_on_disk(up, vmid) == _conf_volumes(up.env.conf(vmid)), step
        assert be.rollback(ref).new_digest == v1
        be.stop(ref)
    be.upgrade(ref, UpgradeRequest(insecure=True))
    for step in ROLLBACK_STEPS:
        be.start(ref)
        _killed_at(up, "rollback", vmid, step)
        starts_on_one_image()
        be.history(ref)  # finishes or undoes what was interrupted
        digest = be.status(ref).image_digest
        if digest == v2:  # the rollback was undone: do it now
            be.rollback(ref)
        assert be.status(ref).image_digest == v1, step
        assert [g.image_digest for g in be.history(ref)] == [v1], step
        assert _volumes_on_disk(up, vmid) == _conf_volumes(up.env.conf(vmid)), step
        be.upgrade(ref, UpgradeRequest(insecure=True))
        be.stop(ref)


@pytest.mark.slow
def test_labels_reach_the_status(up: Up) -> None:
    up.push("1")
    up.create("labelled", free_port(), labels=("lxcri.auto-update=registry", "team=web"))
    st = up.env.be.status(CtRef("labelled"))
    assert st.labels.get("lxcri.auto-update") == "registry" and st.labels.get("team") == "web"
    listed = {s.name: s for s in up.env.be.list()}
    assert listed["labelled"].labels.get("lxcri.auto-update") == "registry"


@pytest.mark.slow
def test_zfspool_upgrade_clones_the_new_chain_and_rollback_destroys_it(
    zfs_dataset: str, registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mnt = make_dir() / "zfs"
    subprocess.run(["zfs", "set", f"mountpoint={mnt}", zfs_dataset], check=True)
    sim = start_sim(zfs_pool=zfs_dataset)
    try:
        env = _setup(sim, monkeypatch, tmp_path, LXCRI_PVE_STORAGE="local-zfs")
        up = _up(env, registry, tmp_path)
        v1 = up.push("1")
        port = free_port()
        vmid = up.create("zapp", port)
        env.be.start(CtRef("zapp"))
        assert wait_for(lambda: up.serves(port, "1"), what="v1 answering")
        v2 = up.push("2")
        res = lifecycle_upgrade(
            env.be, CtRef("zapp"), UpgradeRequest(insecure=True, health_timeout=30)
        )
        assert (res.outcome, res.new_digest) == ("upgraded", v2), res
        assert wait_for(lambda: up.serves(port, "2"), what="v2 answering")
        conf = env.conf(vmid)
        m = re.search(rf"^rootfs: local-zfs:subvol-{vmid}-disk-(\d+),size=8G$", conf, re.M)
        assert m and m.group(1) != "0", conf
        ds = f"{zfs_dataset}/subvol-{vmid}-disk-{m.group(1)}"
        origin = subprocess.run(
            ["zfs", "get", "-H", "-o", "value", "origin", ds], capture_output=True, text=True
        ).stdout.strip()
        assert origin.startswith(f"{zfs_dataset}/lxcri/layers/")  # a clone of the new chain
        refs = json.loads((env.cfg.root / "storage/zfs/refs.json").read_text())["containers"]
        assert {str(vmid), f"{vmid}-disk-{m.group(1)}"} <= set(refs)  # both chains kept
        assert f"unused0: local-zfs:subvol-{vmid}-disk-0" in conf
        back = env.be.rollback(CtRef("zapp"))
        assert back.new_digest == v1 and wait_for(lambda: up.serves(port, "1"), what="v1 back")
        gone = subprocess.run(["zfs", "list", ds], capture_output=True, text=True)
        assert gone.returncode != 0
        refs = json.loads((env.cfg.root / "storage/zfs/refs.json").read_text())["containers"]
        assert f"{vmid}-disk-{m.group(1)}" not in refs
        env.be.upgrade(CtRef("zapp"), UpgradeRequest(insecure=True))
        env.be.remove(CtRef("zapp"), force=True)  # pct destroy frees every generation
        left = subprocess.run(
            ["zfs", "list", "-H", "-o", "name", "-r", zfs_dataset], capture_output=True, text=True
        ).stdout
        assert f"subvol-{vmid}-" not in left, left
        refs = json.loads((env.cfg.root / "storage/zfs/refs.json").read_text())["containers"]
        assert not [c for c in refs if c.startswith(str(vmid))]
    finally:
        sim.close()
        subprocess.run(["zfs", "inherit", "mountpoint", zfs_dataset], capture_output=True)
        shutil.rmtree(mnt.parent, ignore_errors=True)


@pytest.mark.slow
def test_a_ct_from_before_generations_were_recorded_upgrades_and_rolls_back(up: Up) -> None:
    be = up.env.be
    v1 = up.push("1")
    vmid = up.create("older", free_port(), env=("MINE=kept",))
    (up.env.state_dir(vmid) / "generations.json").unlink()  # as lxcri left it before
    assert [(g.number, g.image_digest, g.current) for g in be.history(CtRef("older"))] == [
        (1, v1, True)
    ]
    v2 = up.push("2")
    assert be.upgrade(CtRef("older"), UpgradeRequest(insecure=True)).new_digest == v2
    conf = up.env.conf(vmid)
    # what the old image gave was worked out from it (still in the store): it moved
    assert "lxc.environment.runtime: APP_VERSION=2" in conf, conf
    assert "lxc.environment.runtime: MINE=kept" in conf
    assert be.rollback(CtRef("older")).new_digest == v1
    assert "lxc.environment.runtime: APP_VERSION=1" in up.env.conf(vmid)
