"""lxcri's LXC hook: its context for hook versions 0 and 1, the exit-at-once
path for containers lxcri does not manage, and idempotent managed runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.containers.paths import libexec
from lxcri_core.hooks.context import HookContext
from lxcri_core.spec.options import RunOptions
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, mounts_under, nft_chains

HOOK = libexec("lxcri-hook")


def test_version_0_takes_name_section_and_type_from_argv() -> None:
    env = {
        "LXC_CONFIG_FILE": "/var/lib/lxcri/containers/web/config",
        "LXC_ROOTFS_MOUNT": "/usr/lib/x86_64-linux-gnu/lxc/rootfs",
        "LXC_ROOTFS_PATH": "/var/lib/lxcri/containers/web/rootfs",
        "LXC_PID": "4242",
    }
    ctx = HookContext.from_env(env, ["lxcri-hook", "web", "lxc", "start-host", "extra"])
    assert (ctx.name, ctx.hook_type, ctx.version) == ("web", "start-host", 0)
    assert ctx.pid == 4242
    assert ctx.args == ("extra",)
    assert ctx.state_dir == "/var/lib/lxcri/containers/web"
    assert ctx.rootfs_path == "/var/lib/lxcri/containers/web/rootfs"


def test_version_1_takes_them_from_the_environment() -> None:
    env = {
        "LXC_HOOK_VERSION": "1",
        "LXC_NAME": "db",
        "LXC_HOOK_SECTION": "lxc",
        "LXC_HOOK_TYPE": "post-stop",
        "LXC_CONFIG_FILE": "/r/containers/db/config",
        "LXC_TARGET": "stop",
    }
    ctx = HookContext.from_env(env, ["lxcri-hook"])
    assert (ctx.name, ctx.hook_type, ctx.version, ctx.target) == ("db", "post-stop", 1, "stop")
    assert ctx.pid is None and ctx.args == ()


@pytest.mark.parametrize(
    ("env", "argv"),
    [
        ({}, ["lxcri-hook"]),  # neither form
        ({}, ["lxcri-hook", "web", "lxc", "no-such-type"]),
        ({"LXC_HOOK_VERSION": "1", "LXC_NAME": "x", "LXC_HOOK_TYPE": "bogus"}, ["h"]),
    ],
)
def test_invocations_lxc_never_makes_are_refused(env: dict[str, str], argv: list[str]) -> None:
    with pytest.raises(ValueError):
        HookContext.from_env(env, argv)


def test_managed_needs_the_marker_beside_the_config(tmp_path: Path) -> None:
    ctx = HookContext(name="c", hook_type="pre-start", version=1,
                      config_file=str(tmp_path / "config"))  # fmt: skip
    assert not ctx.managed()
    (tmp_path / "lxcri.json").write_text("{}")
    assert ctx.managed()
    assert not HookContext(name="c", hook_type="pre-start", version=1).managed()


def _run_hook(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    # as LXC runs it: this interpreter and the hook file, a minimal environment
    return subprocess.run(
        [sys.executable, str(HOOK), *argv],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("version", [0, 1])
def test_unmanaged_container_exits_0_at_once_and_touches_nothing(
    tmp_path: Path, version: int
) -> None:
    cdir = tmp_path / "someone-elses"
    cdir.mkdir()
    (cdir / "config").write_text("lxc.uts.name = x\n")
    env = {"LXC_CONFIG_FILE": str(cdir / "config"), "LXC_ROOTFS_PATH": str(cdir / "rootfs")}
    if version == 1:
        env |= {"LXC_HOOK_VERSION": "1", "LXC_NAME": "x", "LXC_HOOK_TYPE": "pre-start"}
        p = _run_hook(env)
    else:
        p = _run_hook(env, "x", "lxc", "pre-start")
    assert p.returncode == 0, p.stderr
    assert p.stdout == p.stderr == ""
    assert sorted(os.listdir(cdir)) == ["config"]  # no hooks.log, no rootfs mount point


def test_unmanaged_path_does_not_import_the_hook_logic(tmp_path: Path) -> None:
    code = (
        "import runpy, sys, os\n"
        f"os.environ.update(LXC_HOOK_VERSION='1', LXC_NAME='x', LXC_HOOK_TYPE='post-stop',"
        f" LXC_CONFIG_FILE='{tmp_path}/config')\n"
        f"sys.argv = ['{HOOK}']\n"
        "ns = runpy.run_path(sys.argv[0])\n"
        "assert ns['main']() == 0\n"
        "heavy = [m for m in ('lxcri_core.hooks.run', 'lxcri_core.network',"
        " 'lxcri_core.containers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


@pytest.mark.slow
def test_managed_pre_start_and_post_stop_are_idempotent(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    port = free_port()
    rec = engine.create(cfg, BUSYBOX_REF, RunOptions(name="hk", publish=(f"{port}:80",)))
    lxenv.remember("hk")
    sdir = lxenv.state_dir("hk")
    env = {
        "LXC_HOOK_VERSION": "1",
        "LXC_NAME": "hk",
        "LXC_CONFIG_FILE": str(sdir / "config"),
        "LXC_ROOTFS_PATH": rec.rootfs,
    }
    assert mounts_under(lxenv.root) == [] and nft_chains(rec.id) == []
    for _ in range(2):
        p = _run_hook({**env, "LXC_HOOK_TYPE": "pre-start"})
        assert p.returncode == 0, (sdir / "hooks.log").read_text()
        assert mounts_under(lxenv.root) == [rec.rootfs]
        assert len(nft_chains(rec.id)) == 3
    assert (Path(rec.rootfs) / "bin" / "busybox").exists()
    for _ in range(2):
        p = _run_hook({**env, "LXC_HOOK_TYPE": "post-stop"})
        assert p.returncode == 0, (sdir / "hooks.log").read_text()
        assert mounts_under(lxenv.root) == [] and nft_chains(rec.id) == []
    log = (sdir / "hooks.log").read_text()
    assert "FAILED" not in log
    # the core's own log lines land in hooks.log too (LXC drops a hook's stderr)
    assert f"info: lxcri_core.network.ports: ports published container={rec.id}" in log


def test_hook_executable_checks_the_same_marker_as_the_context() -> None:
    from lxcri_core.hooks.context import MARKER

    assert f'MARKER = "{MARKER}"' in HOOK.read_text()
