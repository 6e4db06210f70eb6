"""The CLI through ``--backend lxc``: VMIDs, pct's verbs, the bulk ``list``, CorruptState."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import run_lxcri
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, wait_for

pytestmark = pytest.mark.slow


def _json(p: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def _state(lxenv: LxcEnv, name: str) -> str:
    out = subprocess.run(
        ["lxc-info", "-n", name, "-P", str(lxenv.lxcpath), "-s", "-H"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out or "STOPPED"


def test_pct_verbs_by_vmid(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    doc = _json(
        lxcri(
            "--backend", "lxc", "create", "-o", "json", "--name", "v1", "--memory", "512",
            "--tags", "web;blue", BUSYBOX_REF, "sleep 300",
        )
    )  # fmt: skip
    vmid = doc["vmid"]
    assert vmid >= 100
    lxenv.remember("v1")
    ref = str(vmid)
    assert lxcri("--backend", "lxc", "start", ref).returncode == 0
    st = _json(lxcri("status", ref, "-o", "json"))
    assert (st["vmid"], st["name"], st["status"]) == (vmid, "v1", "running")
    row = [ln.split() for ln in lxcri("list").stdout.splitlines() if "v1" in ln.split()]
    assert row and row[0][:3] == [ref, "running", "v1"]  # VMID STATUS (no lock) NAME

    conf = lxcri("config", ref).stdout.splitlines()
    assert f"vmid: {vmid}" in conf and "memory: 512" in conf and "tags: web;blue" in conf
    # set: the limit changes now, in the running container's cgroup, and for its next start
    assert lxcri("set", ref, "--memory", "256", "--tags", "x").returncode == 0
    conf = lxcri("config", ref).stdout.splitlines()
    assert "memory: 256" in conf and "tags: x" in conf
    live = subprocess.run(
        ["lxc-cgroup", "-n", "v1", "-P", str(lxenv.lxcpath), "memory.limit_in_bytes"],
        capture_output=True,
        text=True,
    )
    if live.returncode == 0:  # cgroup v1 (this machine); v2 hosts read memory.max
        assert int(live.stdout) == 256 * 1024 * 1024
    assert (
        "lxc.cgroup.memory.limit_in_bytes = 268435456"
        in (lxenv.state_dir("v1") / "config").read_text()
    )
    bad = lxcri("set", ref, "--hostname", "other")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "cannot change hostname of a plain LXC container" in bad.stderr

    # enter: a shell; without a terminal it reads its commands from stdin
    p = run_lxcri("enter", ref, input="echo from-$((40+2))\n", env=lxenv.env)
    assert p.returncode == 0 and p.stdout.strip() == "from-42", p.stderr

    before = _json(lxcri("status", ref, "-o", "json"))["pid"]
    assert lxcri("reboot", ref).returncode == 0
    after = _json(lxcri("status", ref, "-o", "json"))
    assert after["status"] == "running" and after["pid"] != before

    assert lxcri("shutdown", "-t", "2", ref).returncode == 0
    assert _json(lxcri("status", ref, "-o", "json"))["status"] == "exited"
    assert lxcri("destroy", ref).returncode == 0
    assert not lxenv.state_dir("v1").exists()
    gone = lxcri("start", ref)
    assert gone.returncode == 1 and f"no such container: {ref}" in gone.stderr


def test_concurrent_creates_get_distinct_vmids(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    def create(i: int) -> int:
        doc = _json(lxcri("create", "-o", "json", "--name", f"cc{i}", BUSYBOX_REF, "true"))
        return int(doc["vmid"])

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(create, range(4)))
    assert len(set(got)) == 4
    ls = json.loads(lxcri("list", "-o", "json").stdout)
    assert sorted(c["vmid"] for c in ls) == sorted(got)


def test_run_with_a_given_vmid_and_pct_network(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    bridge = lxenv.config().bridge
    p = lxcri(
        "run", "--rm", "--vmid", "4242", "--net0", f"name=eth0,bridge={bridge},ip=dhcp",
        "--mp0", "/etc,mp=/hostetc,ro=1", BUSYBOX_REF,
        "test -r /hostetc/hostname && ! touch /hostetc/x && ip -4 addr show eth0 | grep -q inet",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = lxcri("run", "--rm", "--mp0", "local-lvm:8,mp=/data", BUSYBOX_REF, "true")
    assert p.returncode == 1 and "Proxmox storage volume" in p.stderr
    assert p.stderr.count("\n") == 1


def _counting_path(tmp: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose lxc-info and lxc-ls log every call, then run the real tool."""
    log = tmp / "calls"
    bindir = tmp / "bin"
    bindir.mkdir()
    for tool in ("lxc-info", "lxc-ls"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        w = bindir / tool
        w.write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        w.chmod(w.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, log


def test_list_reads_in_bulk_no_process_per_container(
    lxenv: LxcEnv, lxcri: Lxcri, tmp_path: Path
) -> None:
    for i in range(4):
        assert lxcri("create", "--name", f"b{i}", BUSYBOX_REF, "sleep 300").returncode == 0
        lxenv.remember(f"b{i}")
    env, log = _counting_path(tmp_path)
    # nothing runs: no lxc tool at all
    p = run_lxcri("list", env={**lxenv.env, **env})
    assert p.returncode == 0 and p.stdout.count("created") == 4, p.stderr
    assert not log.exists()
    for i in range(2):
        assert lxcri("start", f"b{i}").returncode == 0
    for cmd in (("list",), ("ps",), ("list", "-o", "json")):
        log.unlink(missing_ok=True)
        p = run_lxcri(*cmd, env={**lxenv.env, **env})
        assert p.returncode == 0, p.stderr
        calls = log.read_text().split()
        assert calls == ["lxc-ls"], (cmd, calls)  # one for all, never lxc-info per container
    ls = json.loads(p.stdout)
    running = {c["name"]: c["pid"] for c in ls if c["status"] == "running"}
    assert set(running) == {"b0", "b1"} and all(running.values())


def test_rm_refuses_a_corrupt_record_and_leaves_the_container_running(
    lxenv: LxcEnv, lxcri: Lxcri
) -> None:
    """Before: a record that did not parse was taken for a half-created container, and
    `rm` without --force tore it down while it ran."""
    lxenv.start("cor", args=("sleep 300",))
    (lxenv.state_dir("cor") / "lxcri.json").write_text('{"id": "trunc')
    p = lxcri("rm", "cor")
    assert p.returncode == 1
    assert "corrupt" in p.stderr and "rm --force cor" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1
    assert _state(lxenv, "cor") == "RUNNING"
    assert lxenv.state_dir("cor").is_dir()
    st = lxcri("status", "cor")
    assert st.returncode == 1 and "corrupt" in st.stderr
    p = lxcri("rm", "--force", "cor")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: _state(lxenv, "cor") == "STOPPED", 20, "the container to stop")
    assert not lxenv.state_dir("cor").exists()
