"""The hook executables: context parsing, unmanaged containers, the PVE hookscript."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcri_core.hooks.context import HookContext

REPO = Path(__file__).resolve().parents[2]


def test_version0_arguments():
    ctx = HookContext.from_env(
        {"LXC_CONFIG_FILE": "/x/c1/config", "LXC_ROOTFS_MOUNT": "/r"},
        ["hook", "c1", "lxc", "pre-start"],
    )
    assert (ctx.name, ctx.hook_type, ctx.version, ctx.state_dir) == ("c1", "pre-start", 0, "/x/c1")


def test_version1_environment():
    env = {
        "LXC_HOOK_VERSION": "1",
        "LXC_NAME": "c2",
        "LXC_HOOK_TYPE": "start-host",
        "LXC_PID": "4242",
        "LXC_CONFIG_FILE": "/x/c2/config",
    }
    ctx = HookContext.from_env(env, ["hook", "extra"])
    assert (ctx.name, ctx.hook_type, ctx.pid, ctx.args) == ("c2", "start-host", 4242, ("extra",))


@pytest.mark.parametrize("argv", [["hook"], ["hook", "c1", "lxc", "bogus"]])
def test_not_a_hook_invocation(argv):
    with pytest.raises(ValueError):
        HookContext.from_env({}, argv)


def _hook(env: dict[str, str], *args: str, script: str = "lxcri-hook"):
    return subprocess.run(
        [sys.executable, str(REPO / "hooks" / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_unmanaged_container_exits_zero_without_touching_anything(tmp_path):
    (tmp_path / "c1").mkdir()
    proc = _hook({"LXC_CONFIG_FILE": str(tmp_path / "c1" / "config")}, "c1", "lxc", "post-stop")
    assert proc.returncode == 0
    assert list((tmp_path / "c1").iterdir()) == []


def test_managed_hook_failure_is_logged_and_fails(tmp_path):
    sdir = tmp_path / "c1"
    sdir.mkdir()
    (sdir / "lxcri.json").write_text("{not json")
    proc = _hook({"LXC_CONFIG_FILE": str(sdir / "config")}, "c1", "lxc", "pre-start")
    assert proc.returncode == 1
    assert "pre-start: FAILED" in (sdir / "hooks.log").read_text()


def test_pve_hookscript(tmp_path):
    env = {"LXCRI_ROOT": str(tmp_path)}
    assert _hook(env, "101", "pre-start", script="lxcri-pve-hookscript").returncode == 0
    assert _hook(env, "abc", "pre-start", script="lxcri-pve-hookscript").returncode == 2
    sdir = tmp_path / "pve" / "101"
    sdir.mkdir(parents=True)
    doc = {"id": "101", "rootfs": str(sdir), "mount": [], "spec": {"ports": []}}
    (sdir / "lxcri.json").write_text(json.dumps(doc))
    assert _hook(env, "101", "post-start", script="lxcri-pve-hookscript").returncode == 0
    assert _hook(env, "101", "post-stop", script="lxcri-pve-hookscript").returncode == 0
    (sdir / "lxcri.json").write_text("[]")
    proc = _hook(env, "101", "pre-start", script="lxcri-pve-hookscript")
    assert proc.returncode == 1
    assert "FAILED" in (sdir / "hooks.log").read_text()


def test_post_stop_unmounts_even_when_unpublishing_fails(tmp_path, monkeypatch):
    from lxcri_core import mountsys
    from lxcri_core.hooks import run as hook_run
    from lxcri_core.network import ports

    calls = []

    def broken_unpublish(cid, **kw):
        raise RuntimeError("nft: table busy")

    monkeypatch.setattr(ports, "unpublish", broken_unpublish)
    monkeypatch.setattr(hook_run, "is_mountpoint", lambda path: True)
    monkeypatch.setattr(
        mountsys, "umount", lambda target, flags=0: calls.append(["umount", target])
    )
    doc = {"id": "c1", "rootfs": str(tmp_path), "mount": ["overlay", "x"], "spec": {"ports": [1]}}
    log = hook_run.HookLog(tmp_path / "hooks.log")
    with pytest.raises(RuntimeError, match="table busy"):
        hook_run.post_stop(None, doc, log)  # type: ignore[arg-type]
    assert calls == [["umount", str(tmp_path)]]
    assert "unpublish failed" in (tmp_path / "hooks.log").read_text()
