"""The container supervisor works with the config the CLI was given (``--config``),
not the default one: a ``run -d --rm`` container's address goes back to the
pool of the bridge it was leased on."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.config import Config, Credential, config_to_dict, parse_config
from lxcri_core.network.bridge import remove_bridge
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, sh, wait_for


def test_the_config_survives_the_trip_to_the_supervisor() -> None:
    cfg = Config(
        root=Path("/srv/x"),
        storage="dir",
        zfs_pool="tank/d",
        insecure_registries=("127.0.0.1:5000",),
        mirrors={"docker.io": ("m1:5000", "m2")},
        auths={"r.example": Credential("bot", "pw")},
        bridge="br9",
        bridge_subnet="10.9.0.0/24",
        bridge_subnet6="fd09::/64",
        parallel_downloads=7,
        log_level="info",
    )
    assert parse_config(json.loads(json.dumps(config_to_dict(cfg)))) == cfg


@pytest.fixture
def own_bridge(lxenv: LxcEnv, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"lxs{secrets.token_hex(3)}"
    subnet = f"10.251.{100 + secrets.randbelow(150)}.0/24"
    cfgfile = tmp_path / "given.yaml"
    cfgfile.write_text(f"bridge: {name}\nbridge_subnet: {subnet}\n")
    try:
        yield name, cfgfile
    finally:
        lxenv.remove_all()
        remove_bridge(name)


@pytest.mark.slow
def test_run_d_rm_releases_the_lease_on_the_bridge_of_the_given_config(
    lxcri: Lxcri, lxenv: LxcEnv, own_bridge: tuple[str, Path]
) -> None:
    bridge, cfgfile = own_bridge
    port = free_port()
    p = lxcri(
        "--config",
        str(cfgfile),
        "run",
        "-d",
        "--rm",
        "--name",
        "given",
        "-p",
        f"{port}:80",
        BUSYBOX_REF,
        "sleep 3",
    )
    assert p.returncode == 0, p.stderr
    cid = lxenv.remember("given")
    leases = lxenv.root / "network" / f"{bridge}.json"
    assert cid in leases.read_text()
    # the process ends; the supervisor removes the container with the given config
    wait_for(lambda: not lxenv.state_dir("given").exists(), timeout=40, what="auto-remove")
    assert cid not in leases.read_text()
    default = lxenv.root / "network" / f"{lxenv.config().bridge}.json"
    assert not default.exists() or cid not in default.read_text()
    log = (lxenv.root / "containers").glob("*/supervisor.log")
    assert not any("removing given failed" in f.read_text() for f in log)


@pytest.mark.slow
def test_a_restart_recreates_the_bridge_of_the_given_config(
    lxcri: Lxcri, lxenv: LxcEnv, own_bridge: tuple[str, Path]
) -> None:
    bridge, cfgfile = own_bridge
    subnet = cfgfile.read_text().split("bridge_subnet: ")[1].strip()
    port = free_port()
    p = lxcri(
        "--config",
        str(cfgfile),
        "run",
        "-d",
        "--restart",
        "always",
        "--name",
        "crashy",
        "-p",
        f"{port}:80",
        BUSYBOX_REF,
        "sleep 3; exit 1",
    )
    assert p.returncode == 0, p.stderr
    cid = lxenv.remember("crashy")
    sdir = lxenv.state_dir("crashy")
    # the bridge goes away under the running container (an admin, a reboot)
    remove_bridge(bridge)

    def restarts() -> int:
        exit_json = sdir / "exit.json"
        return (
            int(json.loads(exit_json.read_text()).get("restarts", 0)) if exit_json.exists() else 0
        )

    def running() -> bool:
        return any(
            "crashy" in ln.split() and "running" in ln for ln in lxcri("list").stdout.splitlines()
        )

    wait_for(lambda: restarts() >= 1, timeout=30, what="a restart")
    # the supervisor put the given config's bridge back before restarting
    gw = f"{subnet.rsplit('.', 1)[0]}.1/24"
    wait_for(lambda: gw in sh("ip", "-4", "addr", "show", bridge).stdout, what="the bridge")
    wait_for(running, timeout=30, what="the container running again")
    rm = lxcri("--config", str(cfgfile), "rm", "-f", "crashy")
    assert rm.returncode == 0, rm.stderr
    assert cid not in (lxenv.root / "network" / f"{bridge}.json").read_text()
