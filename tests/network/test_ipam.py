"""Address leases: stable, distinct, never the network/gateway/broadcast, crash-safe."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from pathlib import Path

import pytest

from lxcri_core.config import load_config
from lxcri_core.errors import NetworkError
from lxcri_core.network import ipam
from lxcri_core.network.ipam import Ipam


def test_first_lease_skips_network_and_gateway(tmp_path):
    pool = Ipam(tmp_path, "br0", "10.200.5.0/24")
    assert pool.allocate("100") == IPv4Interface("10.200.5.2/24")
    assert pool.allocate_lease("100").gateway == IPv4Address("10.200.5.1")


def test_lease_is_stable_across_instances_and_persisted(tmp_path):
    a = Ipam(tmp_path, "br0", "10.200.5.0/24")
    first = [a.allocate(c) for c in ("x", "y", "z")]
    b = Ipam(tmp_path, "br0", "10.200.5.0/24")  # a "restart": fresh object, same file
    assert [b.allocate(c) for c in ("z", "y", "x")] == first[::-1]
    doc = json.loads((tmp_path / "network" / "br0.json").read_text())
    assert doc["subnet"] == "10.200.5.0/24"
    assert doc["leases"] == {"x": "10.200.5.2", "y": "10.200.5.3", "z": "10.200.5.4"}
    assert [lease.container_id for lease in b.leases()] == ["x", "y", "z"]


def test_small_subnet_runs_out_without_broadcast(tmp_path):
    pool = Ipam(tmp_path, "br0", "10.200.5.0/29")  # .0 net, .1 gw, .7 broadcast
    got = [pool.allocate(str(i)).ip for i in range(5)]
    assert got == [IPv4Address(f"10.200.5.{i}") for i in range(2, 7)]
    with pytest.raises(NetworkError, match=r"10\.200\.5\.0/29 of bridge br0 has no free address"):
        pool.allocate("one-too-many")


def test_release_frees_address_for_reuse_and_is_idempotent(tmp_path):
    pool = Ipam(tmp_path, "br0", "10.200.5.0/24")
    pool.allocate("a")
    b = pool.allocate("b")
    pool.release("b")
    pool.release("b")
    pool.release("never-had-one")
    assert pool.get("b") is None
    assert pool.allocate("c") == b


def test_get_never_creates(tmp_path):
    pool = Ipam(tmp_path, "br0", "10.200.5.0/24")
    assert pool.get("a") is None and pool.leases() == []
    assert not (tmp_path / "network" / "br0.json").exists()


def test_ipv6_follows_ipv4_offset(tmp_path):
    pool = Ipam(tmp_path, "br0", "10.200.5.0/24", "fd42:c8:5::/64")
    pool.allocate("a")
    lease = pool.allocate_lease("b")
    assert lease.ipv4 == IPv4Interface("10.200.5.3/24")
    assert lease.ipv6 == IPv6Interface("fd42:c8:5::3/64")
    assert ipam.ipv6_for(lease.ipv4, IPv6Network("fd00::/120")) == IPv6Interface("fd00::3/120")
    with pytest.raises(NetworkError, match="smaller"):
        ipam.ipv6_for(IPv4Interface("10.0.1.0/16"), IPv6Network("fd00::/120"))


def test_other_subnet_is_refused_with_fix(tmp_path):
    Ipam(tmp_path, "br0", "10.200.5.0/24").allocate("a")
    with pytest.raises(NetworkError) as e:
        Ipam(tmp_path, "br0", "10.200.6.0/24").allocate("b")
    assert "10.200.5.0/24" in str(e.value) and "remove" in str(e.value)


@pytest.mark.parametrize("text", ["{", "[]", '{"subnet": "10.200.5.0/24"}'])
def test_corrupt_lease_file_is_reported(tmp_path, text):
    path = tmp_path / "network" / "br0.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(NetworkError, match=str(path)):
        Ipam(tmp_path, "br0", "10.200.5.0/24").allocate("a")


def test_bad_ids_and_tiny_subnets_refused(tmp_path):
    with pytest.raises(NetworkError, match="container id"):
        Ipam(tmp_path, "br0", "10.200.5.0/24").allocate("../x")
    with pytest.raises(NetworkError, match="too small"):
        Ipam(tmp_path, "br0", "10.200.5.0/31")


def test_module_functions_use_config_root(isolated_env: Path):
    cfg = load_config()  # lxcri0 10.88.0.0/16, unless tests/conftest.py was told otherwise
    got = ipam.allocate("100", bridge=cfg.bridge, subnet=cfg.bridge_subnet)
    net = IPv4Network(cfg.bridge_subnet)
    assert got == IPv4Interface(f"{net[2]}/{net.prefixlen}")
    assert (cfg.root / "network" / f"{cfg.bridge}.json").exists()
    assert (isolated_env / "network" / f"{cfg.bridge}.json").exists()
    ipam.release("100", bridge=cfg.bridge, subnet=cfg.bridge_subnet)
    assert Ipam.from_config(cfg, cfg.bridge, cfg.bridge_subnet).get("100") is None


def _allocate(args: tuple[str, str]) -> str:
    root, cid = args
    return str(Ipam(Path(root), "br0", "10.200.5.0/24").allocate(cid))


def test_parallel_processes_get_distinct_addresses(tmp_path):
    ids = [f"c{i}" for i in range(20)]
    with ProcessPoolExecutor(max_workers=20) as pool:
        got = list(pool.map(_allocate, [(str(tmp_path), c) for c in ids]))
    assert len(set(got)) == 20
    assert "10.200.5.1/24" not in got
    doc = json.loads((tmp_path / "network" / "br0.json").read_text())
    assert sorted(f"{a}/24" for a in doc["leases"].values()) == sorted(got)
    assert set(doc["leases"]) == set(ids)
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "network").iterdir()) == ["br0.json", "br0.json.lock"]


def test_reserved_address_is_never_handed_out_again(tmp_path):
    pool = Ipam(tmp_path, "lxt0", "10.9.0.0/29")
    assert pool.reserve("static", "10.9.0.2/29").ipv4 == IPv4Interface("10.9.0.2/29")
    got = {str(pool.allocate("a").ip), str(pool.allocate("b").ip)}
    assert "10.9.0.2" not in got
    with pytest.raises(NetworkError, match="already leased"):
        pool.reserve("other", "10.9.0.2")
    assert pool.reserve("static", "10.9.0.2").ipv4.ip == IPv4Address("10.9.0.2")  # idempotent
    for bad in ("10.9.0.1", "10.9.0.0", "10.9.0.7", "10.10.0.5"):
        with pytest.raises(NetworkError, match="not a usable host address"):
            pool.reserve("x", bad)
