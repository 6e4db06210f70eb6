"""The fake pct and pvesh: schema-checked arguments, PVE's messages, the config lock."""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

from tests.pvesim import pctconf
from tests.pvesim.fixtures import NODE, PveSim, pvesim
from tests.support.images import busybox_image

__all__ = ["pvesim"]


def _create(pvesim: PveSim, *opts: str) -> int:
    vmid = pvesim.vmid()
    tmpl = pvesim.add_template("bb.tar", busybox_image())
    res = pvesim.pct("create", str(vmid), tmpl, *opts)
    assert res.returncode == 0, res.stderr
    return vmid


def test_pct_checks_arguments_against_the_schema(pvesim: PveSim) -> None:
    vmid = str(pvesim.first_vmid)
    res = pvesim.pct("create", vmid, "local:vztmpl/bb.tar", "--bogus", "1")
    assert res.returncode == 255
    assert res.stderr.startswith("Unknown option: bogus\n400 unable to parse option")
    res = pvesim.pct("create", vmid, "local:vztmpl/bb.tar", "--memory", "x", "--cmode", "tv")
    assert res.returncode == 255
    assert res.stderr == (
        "400 Parameter verification failed.\n"
        "cmode: value 'tv' does not have a value in the enumeration 'shell, console, tty'\n"
        "memory: type check ('integer') failed - got 'x'\n"
    )
    res = pvesim.pct("start")
    assert res.returncode == 255 and "not enough arguments" in res.stderr
    res = pvesim.pct("frobnicate", vmid)
    assert res.returncode == 255 and "unknown command" in res.stderr
    assert pvesim.pct("list").stdout == ""


def test_pct_create_config_set_list_destroy(pvesim: PveSim) -> None:
    vmid = _create(pvesim, "--hostname", "web", "--net0", pvesim.net0(5), "--tags", "lxcri")
    conf = pvesim.pct("config", str(vmid)).stdout
    # Stored as PVE stores it: name first, then sorted, a generated MAC and type=veth.
    net0 = next(line for line in conf.splitlines() if line.startswith("net0: "))
    assert re.fullmatch(
        rf"net0: name=eth0,bridge={pvesim.bridge},gw={pvesim.gateway},"
        rf"hwaddr=BC:24:11(:[0-9A-F]{{2}}){{3}},ip={pvesim.ip(5)}/24,type=veth",
        net0,
    ), net0
    assert "hostname: web\n" in conf and "unprivileged: 1\n" in conf
    assert "lxc.environment.runtime: PATH=/bin\n" in conf
    snippet = pvesim.add_snippet("hook", "#!/bin/sh\nexit 0\n")
    # pct runs as root@pam: the hookscript and a bind mount are allowed.
    res = pvesim.pct(
        "set",
        str(vmid),
        "--hookscript",
        snippet,
        "--mp0",
        "/srv,mp=/srv",
        "--description",
        "lxcri: ref=a:b",
    )
    assert res.returncode == 0, res.stderr
    raw = (pvesim.dir / "etc-pve" / "nodes" / NODE / "lxc" / f"{vmid}.conf").read_text()
    assert raw.startswith("#lxcri%3A ref=a%3Ab\n")  # PVE's encode_text of the description
    assert f"hookscript: {snippet}\n" in raw and "mp0: /srv,mp=/srv\n" in raw
    res = pvesim.pct("set", str(vmid), "--delete", "mp0,tags")
    assert res.returncode == 0, res.stderr
    assert "mp0" not in pvesim.pct("config", str(vmid)).stdout
    assert pvesim.pct("list").stdout.splitlines()[1].split() == [str(vmid), "stopped", "web"]
    assert pvesim.pct("status", str(vmid)).stdout == "status: stopped\n"
    vmlist = json.loads((pvesim.dir / "etc-pve" / ".vmlist").read_text())
    assert vmlist["ids"][str(vmid)]["node"] == NODE
    res = pvesim.pct("destroy", str(vmid))
    assert res.returncode == 0, res.stderr
    assert not (pvesim.dir / "storage" / "local" / "images" / str(vmid)).exists()
    assert json.loads((pvesim.dir / "etc-pve" / ".vmlist").read_text())["ids"] == {}
    res = pvesim.pct("config", str(vmid))
    assert res.returncode == 255
    assert res.stderr == f"Configuration file 'nodes/{NODE}/lxc/{vmid}.conf' does not exist\n"


def test_pct_waits_for_the_pve_config_lock(pvesim: PveSim) -> None:
    vmid = _create(pvesim, "--memory", "64")
    lock = Path("/run/lock/lxc") / f"pve-config-{vmid}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        res = pvesim.pct("set", str(vmid), "--memory", "256", env={"PVESIM_LOCK_TIMEOUT": "1"})
        assert res.returncode == 255
        assert res.stderr == f"can't lock file '{lock}' - got timeout\n"
        assert "memory: 64\n" in pvesim.pct("config", str(vmid)).stdout
    finally:
        os.close(fd)
    assert pvesim.pct("set", str(vmid), "--memory", "256").returncode == 0
    assert "memory: 256\n" in pvesim.pct("config", str(vmid)).stdout


def test_pvesh_get_create_set_delete(pvesim: PveSim) -> None:
    res = pvesim.pvesh("get", "/cluster/nextid", "--output-format", "json")
    assert json.loads(res.stdout) == str(pvesim.first_vmid)
    vmid = pvesim.vmid()
    pvesim.add_template("bb.tar", busybox_image())
    res = pvesim.pvesh(
        "create",
        f"/nodes/{NODE}/lxc",
        "--vmid",
        str(vmid),
        "--ostemplate",
        "local:vztmpl/bb.tar",
        "--memory",
        "64",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith(f"UPID:{NODE}:")
    res = pvesim.pvesh("set", f"/nodes/{NODE}/lxc/{vmid}/config", "--cores", "2")
    assert res.returncode == 0, res.stderr
    res = pvesim.pvesh("get", f"/nodes/{NODE}/lxc/{vmid}/config", "--output-format", "json")
    cfg = json.loads(res.stdout)
    assert cfg["cores"] == 2 and cfg["memory"] == 64
    res = pvesim.pvesh("set", f"/nodes/{NODE}/lxc/{vmid}/config", "--colour", "red")
    assert res.returncode == 255 and "Unknown option: colour" in res.stderr
    res = pvesim.pvesh("delete", f"/nodes/{NODE}/lxc/{vmid}")
    assert res.returncode == 0, res.stderr
    assert pvesim.pvesh("get", f"/nodes/{NODE}/lxc", "--output-format", "json").stdout == "[]\n"


def test_pct_conf_round_trip() -> None:
    text = (
        "#first line%3A with colon\n#second\narch: amd64\nmemory: 512\nmemory: 1024\n"
        "lxc.environment.runtime: A=1\nlxc.init.cmd: /x\n\n[pve:pending]\nmemory: 2048\n"
        "\n[snap1]\narch: amd64\n"
    )
    conf = pctconf.parse(text)
    assert conf.description == "first line: with colon\nsecond\n"
    assert conf.main == {"arch": "amd64", "memory": "1024"}  # the last of a repeated key wins
    assert conf.lxc == [("lxc.environment.runtime", "A=1"), ("lxc.init.cmd", "/x")]
    assert conf.pending == {"memory": "2048"}
    assert conf.snapshots == "[snap1]\narch: amd64\n"
    again = pctconf.parse(pctconf.render(conf))
    assert again == conf
