"""upgrade, rollback and history on pve-api: the simulator's HTTPS API only, real CTs.

The new rootfs reaches the CT as PVE allows it (a helper CT from the uploaded
image, its volume moved and reassigned); the CT's page (``/version``,
``/env.txt``, ``/data.txt`` copied from its mp0 volume at each start) is
fetched from its own address.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxcri_pve.backends.pve_api import PveApiBackend

from lxcri_core import faults
from lxcri_core.backend import CreateRequest, CtRef, UpgradeRequest
from lxcri_core.errors import BackendError
from lxcri_core.lifecycle import upgrade as lifecycle_upgrade
from lxcri_core.spec.options import RunOptions
from tests.pve.test_pve_api import _cfg
from tests.pve.test_pve_upgrade import app_image
from tests.pvesim.fixtures import PveSim, pvesim
from tests.support.lxcenv import wait_for
from tests.support.registry import Registry, push_image, start_registry

__all__ = ["pvesim"]

START = (
    "cat /data/file > /www/data.txt 2>/dev/null; echo $APP_VERSION > /www/version; "
    "env > /www/env.txt; exec httpd -f -p 80 -h /www"
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("api-upgrade-registry") / "reg")
    try:
        yield reg
    finally:
        reg.stop()


@dataclass
class Api:
    sim: PveSim
    be: PveApiBackend
    reg: Registry
    work: Path
    ref: str

    def push(self, version: str, start: str = START, extra_env: tuple[str, ...] = ()) -> str:
        tag = self.ref.split("/", 1)[1]
        img = app_image(version, start, extra_env)
        return push_image(self.reg.addr, img, tag, self.work).manifest_digest

    def get(self, host: int, path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://{self.sim.ip(host)}/{path}", timeout=3) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def serves(self, host: int, version: str) -> bool:
        return self.get(host, "version").strip() == version

    def create(self, name: str, host: int, **kw: object) -> int:
        opts = RunOptions(
            name=name,
            ip=f"{self.sim.ip(host)}/24",
            gateway=self.sim.gateway,
            stop_timeout=1,
            **kw,  # type: ignore[arg-type]
        )
        return self.be.create(CreateRequest(image=self.ref, options=opts, insecure=True)).vmid

    def conf(self, vmid: int) -> str:
        return (self.sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{vmid}.conf").read_text()

    def images(self) -> set[str]:
        """Every CT volume on the local storage."""
        d = self.sim.dir / "storage" / "local" / "images"
        return {f"{p.parent.name}/{p.name}" for p in d.glob("*/*")} if d.is_dir() else set()

    def helpers(self) -> list[str]:
        d = self.sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc"
        return [p.name for p in d.glob("*.conf") if "lxcri-upgrade" in p.read_text()]


@pytest.fixture
def api(pvesim: PveSim, registry: Registry, tmp_path: Path) -> Api:
    ref = f"{registry.addr}/test/apiapp-{secrets.token_hex(4)}:1"
    (tmp_path / "push").mkdir()
    return Api(pvesim, PveApiBackend(_cfg(pvesim), environ={}), registry, tmp_path / "push", ref)


def _referenced(conf: str) -> set[str]:
    return {f"{a}/{b}" for a, b in re.findall(r"local:(\d+)/(subvol-\d+-disk-\d+\.subvol)", conf)}


@pytest.mark.slow
def test_api_upgrade_keeps_the_volume_and_network_and_rollback_returns(api: Api) -> None:
    be = api.be
    v1 = api.push("1")
    vmid = api.create("apiapp", 40, volumes=("/data",), env=("MINE=kept",), memory="96m")
    ref = CtRef(str(vmid))
    vol = re.search(r"^mp0: local:(\d+/subvol-\d+-disk-\d+\.subvol)", api.conf(vmid), re.M)
    assert vol, api.conf(vmid)
    (api.sim.dir / "storage" / "local" / "images" / vol.group(1) / "file").write_text("precious\n")
    be.start(ref)
    assert wait_for(lambda: api.serves(40, "1"), what="v1 answering")
    keep = [ln for ln in api.conf(vmid).splitlines() if ln.startswith(("mp0:", "net0:", "memory:"))]
    assert len(keep) == 3

    v2 = api.push("2")
    res = lifecycle_upgrade(be, ref, UpgradeRequest(insecure=True, health_timeout=30))
    assert (res.outcome, res.old_digest, res.new_digest, res.started) == ("upgraded", v1, v2, True)
    assert wait_for(lambda: api.serves(40, "2"), what="v2 answering")
    env = api.get(40, "env.txt")
    assert "APP_VERSION=2" in env and "MINE=kept" in env, env
    assert api.get(40, "data.txt") == "precious\n" and api.get(40, "index.html") == "page 2\n"
    conf = api.conf(vmid)
    for line in keep:
        assert line in conf.splitlines(), (line, conf)
    assert "lxcri" in be.status(ref).tags and be.status(ref).image_digest == v2
    gens = be.history(ref)
    assert [(g.number, g.image_digest, g.current) for g in gens] == [(2, v2, True), (1, v1, False)]
    assert not api.helpers()  # the helper CT is gone, and every volume left is the CT's
    assert api.images() == _referenced(conf)
    assert be.upgrade(ref, UpgradeRequest(insecure=True)).message == f"already at {v2}"

    back = be.rollback(ref)
    assert (back.outcome, back.new_digest, back.started) == ("rolled-back", v1, True)
    assert wait_for(lambda: api.serves(40, "1"), what="v1 answering again")
    assert "APP_VERSION=1" in api.get(40, "env.txt") and api.get(40, "data.txt") == "precious\n"
    assert [(g.image_digest, g.current) for g in be.history(ref)] == [(v1, True)]
    assert api.images() == _referenced(api.conf(vmid))
    with pytest.raises(BackendError, match="no earlier generation"):
        be.rollback(ref)


@pytest.mark.slow
def test_api_broken_image_rolls_back_and_keep_generations_prunes(api: Api) -> None:
    be = api.be
    v1 = api.push("1")
    vmid = api.create("apiflaky", 41)
    ref = CtRef(str(vmid))
    be.start(ref)
    assert wait_for(lambda: api.serves(41, "1"), what="v1 answering")
    api.push("broken", start="exit 3")
    res = lifecycle_upgrade(be, ref, UpgradeRequest(insecure=True, health_timeout=20))
    assert res.outcome == "rolled-back" and v1 in res.message, res
    assert wait_for(lambda: api.serves(41, "1"), what="v1 after the rollback")
    assert api.images() == _referenced(api.conf(vmid))

    be.cfg = dataclasses.replace(be.cfg, keep_generations=1)
    v2, _ = api.push("2"), be.upgrade(ref, UpgradeRequest(insecure=True))
    v3, _ = api.push("3"), be.upgrade(ref, UpgradeRequest(insecure=True))
    gens = be.history(ref)
    assert [(g.number, g.image_digest) for g in gens] == [(3, v3), (2, v2)]
    assert api.images() == _referenced(api.conf(vmid)) and len(api.images()) == 2


@pytest.mark.exhaustive
@pytest.mark.slow
@pytest.mark.parametrize(
    "step", ["api-journal", "api-helper", "api-moved", "api-stopped", "api-swapped"]
)
def test_api_kill_9_then_the_ct_starts_and_the_next_upgrade_cleans_up(
    api: Api, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    be = api.be
    api.push("1")
    vmid = api.create("apicrash", 42)
    ref = CtRef(str(vmid))
    be.start(ref)
    assert wait_for(lambda: api.serves(42, "1"), what="v1 answering")
    v2 = api.push("2")
    monkeypatch.setenv(faults.ENV, step)
    pid = os.fork()
    if pid == 0:  # the child dies at the step, as a kill -9 would leave it
        try:  # its own connections: the parent's pool stays in step
            PveApiBackend(_cfg(api.sim), environ={}).upgrade(ref, UpgradeRequest(insecure=True))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9, status
    monkeypatch.delenv(faults.ENV)
    if be.status(ref).status != "running":
        be.start(ref)
    assert wait_for(lambda: api.get(42, "version").strip() in ("1", "2"), what="answering")
    done = be.upgrade(ref, UpgradeRequest(insecure=True))
    assert done.outcome in ("upgraded", "unchanged") and be.status(ref).image_digest == v2
    if be.status(ref).status != "running":
        be.start(ref)
    assert wait_for(lambda: api.serves(42, "2"), what="v2 answering")
    assert not api.helpers()
    assert api.images() == _referenced(api.conf(vmid))


@pytest.mark.slow
def test_api_a_hostile_new_image_is_refused_before_anything_is_made(api: Api) -> None:
    api.push("1")
    vmid = api.create("apiguard", 43)
    before, images = api.conf(vmid), api.images()
    api.push("2", extra_env=("EVIL=x\nlxc.mount.entry: / host none bind 0 0",))
    with pytest.raises(BackendError, match="environment variable 'EVIL'"):
        api.be.upgrade(CtRef(str(vmid)), UpgradeRequest(insecure=True))
    assert api.conf(vmid) == before and api.images() == images and not api.helpers()


@pytest.mark.slow
def test_api_ct_from_before_generations_were_recorded_upgrades(api: Api) -> None:
    v1 = api.push("1")
    vmid = api.create("apiolder", 44, env=("MINE=kept",))
    ref = CtRef(str(vmid))
    # the description an earlier lxcri wrote: no generations line
    api.be.config_set(ref, {"description": f"lxcri image {api.ref}\nlxcri digest {v1}"})
    assert [(g.number, g.image_digest, g.current) for g in api.be.history(ref)] == [(1, v1, True)]
    v2 = api.push("2")
    assert api.be.upgrade(ref, UpgradeRequest(insecure=True)).new_digest == v2
    conf = api.conf(vmid)
    assert "lxc.environment.runtime: APP_VERSION=2" in conf and "MINE=kept" in conf, conf
    assert [g.image_digest for g in api.be.history(ref)] == [v2, v1]


@pytest.mark.exhaustive
@pytest.mark.slow
def test_api_kill_9_in_a_rollback_then_the_next_upgrade_cleans_up(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = api.push("1")
    vmid = api.create("apirb", 45)
    ref = CtRef(str(vmid))
    api.push("2")
    api.be.upgrade(ref, UpgradeRequest(insecure=True))
    monkeypatch.setenv(faults.ENV, "api-rolled-back")
    pid = os.fork()
    if pid == 0:
        try:
            PveApiBackend(_cfg(api.sim), environ={}).rollback(ref)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9, status
    monkeypatch.delenv(faults.ENV)
    api.be.start(ref)  # on the old image already: the swap is one config write
    assert wait_for(lambda: api.serves(45, "1"), what="v1 answering")
    v3 = api.push("3")
    assert api.be.upgrade(ref, UpgradeRequest(insecure=True)).new_digest == v3
    assert [g.image_digest for g in api.be.history(ref)] == [v3, v1]
    assert api.images() == _referenced(api.conf(vmid))  # the discarded v2 volume is gone


@pytest.mark.slow
def test_api_a_forged_journal_destroys_no_other_ct(api: Api) -> None:
    # someone allowed to edit descriptions names another CT as the helper of an
    # interrupted upgrade, dressed as one: the next upgrade must not destroy it
    # (or a detached volume of the CT's own, to be discarded)
    v1 = api.push("1")
    vmid = api.create("apitarget", 46, volumes=("/data",))
    other = api.create("apivictim", 47)
    ref = CtRef(str(vmid))
    api.be.config_set(ref, {"mp0": None})  # detached: the volume is kept as unused0
    kept = str(api.be.config_get(ref)["unused0"])
    mark = api.sim.dir / "storage" / "local" / "images" / kept.partition(":")[2] / "mine"
    mark.write_text("the user's\n")
    desc = api.be.config_get(ref)["description"]
    journal = json.dumps({"helper": other, "key": "unused0", "discard": [kept]})
    api.be.config_set(ref, {"description": f"{desc}\nlxcri upgrading {journal}"})
    api.be.config_set(CtRef(str(other)), {"description": f"lxcri upgrade helper of CT {vmid}"})
    v2 = api.push("2")
    assert api.be.upgrade(ref, UpgradeRequest(insecure=True)).new_digest == v2
    assert api.be.status(CtRef(str(other))).vmid == other  # still there
    assert mark.read_text() == "the user's\n"  # the detached volume was not deleted
    assert re.search(rf"^unused\d+: {re.escape(kept)}$", api.conf(vmid), re.M), api.conf(vmid)
    assert [g.image_digest for g in api.be.history(ref)] == [v2, v1]
