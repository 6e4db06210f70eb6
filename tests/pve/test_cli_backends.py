"""The ``lxcri`` command line on the two Proxmox backends, against the simulator.

Everything goes through the installed CLI as a real process, chosen by
``LXCRI_BACKEND`` as an admin would: run -d, list and ps, status, exec, logs,
set and config, stop, destroy; the CT is real (LXC), the page is fetched from
the host. Errors the API cannot avoid (exec on pve-api) are one line, exit 1.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

from tests.conftest import run_lxcri
from tests.pvesim.fixtures import PveSim, free_port, start_sim
from tests.support.lxcenv import make_dir


@pytest.fixture(scope="module")
def sim() -> Iterator[PveSim]:
    s = start_sim()
    try:
        yield s
    finally:
        s.close()


class Cli:
    def __init__(self, sim: PveSim, backend: str) -> None:
        self.sim = sim
        self.dir = make_dir()
        self.env = sim.lxcri_env(self.dir, backend)
        layout = self.dir / "layout"
        build_demo_layout(layout)
        self.ok("import", str(layout), "--name", DEMO_REF)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_lxcri(*args, env=self.env, timeout=180)

    def ok(self, *args: str) -> str:
        r = self(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def one_line_error(self, *args: str) -> str:
        r = self(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lxcri: error: "), r.stderr
        return lines[0]

    def listed(self) -> dict[str, dict[str, object]]:
        return {c["name"]: c for c in json.loads(self.ok("list", "-o", "json"))}


def _page(addr: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{addr}:{port}/", timeout=5) as r:
        return str(r.read().decode())


def _storage(sim: PveSim, vmid: int) -> list[Path]:
    return [p for p in (sim.dir / "storage").glob(f"*/images/{vmid}") if any(p.iterdir())]


@pytest.mark.slow
def test_pve_local_cli_run_publish_exec_set_stop_destroy(sim: PveSim) -> None:
    cli = Cli(sim, "pve-local")
    port = free_port()
    out = cli.ok(
        "run", "-d", "--name", "web", "-p", f"{port}:80", "-v", "data:/data",
        "--ip", f"{sim.ip(30)}/24", "--gateway", sim.gateway, DEMO_REF,
    )  # fmt: skip
    vmid = int(out.strip())
    try:
        ct = cli.listed()["web"]
        assert ct["vmid"] == vmid and ct["status"] == "running"
        assert ct["image"] == DEMO_REF
        # through the hookscript: from the host's loopback and from the bridge's address
        assert "Hello from an lxcri container" in _page("127.0.0.1", port)
        assert "Hello from an lxcri container" in _page(sim.gateway, port)
        assert f"{port}->80/tcp" in cli.ok("ps")
        assert "www" in cli.ok("exec", "web", "ls", "/").split()
        # the network inspector on a Proxmox CT: its addresses from its own netns, its
        # host veth (Proxmox's vethVMIDi0) owned by it through the peer ifindex
        net = json.loads(cli.ok("inspect-network", "web", "-o", "json"))
        [ct_net] = net["containers"]
        assert ct_net["vmid"] == vmid and not ct_net["error"]
        addrs = [a for i in ct_net["interfaces"] for a in i["addresses"]]
        assert f"{sim.ip(30)}/24" in addrs, ct_net
        owned = [v for v in net["veths"] if v["container"] == "web"]
        assert [(v["name"], v["container_ifname"]) for v in owned] == [(f"veth{vmid}i0", "eth0")]
        assert "response:200" in cli.ok("logs", "web")
        # a user's --tags keeps lxcri's tag: the CT must stay lxcri's
        cli.ok("set", "web", "--memory", "256", "--tags", "prod;web")
        conf = json.loads(cli.ok("config", "web", "-o", "json"))
        assert conf["memory"] == 256 and conf["tags"] == "lxcri;prod;web"
        assert cli.listed()["web"]["tags"] == ["lxcri", "prod", "web"]
        cli.ok("stop", "web")
        assert cli.listed()["web"]["status"] == "exited"
        assert "stopped" in cli.ok("list")
        assert _storage(sim, vmid)
    finally:
        cli("destroy", "--force", str(vmid))
    assert "web" not in cli.listed()
    assert not _storage(sim, vmid)
    assert not (sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{vmid}.conf").exists()


@pytest.mark.slow
def test_pve_api_cli_run_list_config_set_stop_destroy(sim: PveSim) -> None:
    cli = Cli(sim, "pve-api")
    # the run's arguments, not the image's Cmd: httpd on port 8080
    vmid = int(
        cli.ok(
            "run", "-d", "--name", "api-web", "--ip", f"{sim.ip(31)}/24", "--gateway",
            sim.gateway, DEMO_REF, "-f", "-p", "8080", "-h", "/www",
        ).strip()
    )  # fmt: skip
    try:
        ct = cli.listed()["api-web"]
        # the image comes from the CT's description: list reads every config
        assert ct["vmid"] == vmid and ct["status"] == "running"
        assert ct["image"] == DEMO_REF and ct["node"] == "pve1"
        assert "Hello from an lxcri container" in _page(sim.ip(31), 8080)
        cli.ok("set", "api-web", "--cores", "2", "--tags", "db")
        conf = json.loads(cli.ok("config", "api-web", "-o", "json"))
        assert conf["cores"] == 2 and conf["tags"] == "lxcri;db"
        # what the API cannot do: one line that says where it can be done
        line = cli.one_line_error("exec", "api-web", "true")
        assert f"pct exec {vmid}" in line
        assert "--backend pve-local" in cli.one_line_error("logs", "api-web")
        # refused before anything is created (the backend's features)
        before = set(cli.listed())
        assert "publishing ports" in cli.one_line_error("run", "-d", "-p", "8080:80", DEMO_REF)
        line = cli.one_line_error("run", "--name", "fg", DEMO_REF)
        assert "foreground is not possible on the pve-api backend" in line
        assert "--rm is not possible" in cli.one_line_error("run", "-d", "--rm", DEMO_REF)
        assert set(cli.listed()) == before
        cli.ok("stop", "api-web")
        assert cli.listed()["api-web"]["status"] == "exited"
    finally:
        cli("destroy", "--force", str(vmid))
    assert "api-web" not in cli.listed()
    assert not _storage(sim, vmid)
    assert "no container api-web" in cli.one_line_error("status", "api-web")
