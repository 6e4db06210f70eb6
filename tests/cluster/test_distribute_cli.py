"""``lxcri image distribute``: node lists from the cluster files, and a real send over ssh."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lxcri_core.cluster.nodes import ClusterNode, cluster_nodes, local_node, parse_node
from lxcri_core.errors import ConfigError
from tests.conftest import invoke
from tests.support.images import multilayer_image
from tests.support.sshnodes import add_node


def members(root: Path, me: str, nodes: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for n in nodes:
        (root / "nodes" / n).mkdir(parents=True, exist_ok=True)
    listed = {n: {"id": i + 1, "online": 1, "ip": ip} for i, (n, ip) in enumerate(nodes.items())}
    (root / ".members").write_text(json.dumps({"nodename": me, "nodelist": listed}))


def test_nodes_from_cluster_files(tmp_path: Path) -> None:
    members(tmp_path, "pve1", {"pve1": "10.0.0.1", "pve2": "10.0.0.2"})
    (tmp_path / "nodes" / "pve3").mkdir()  # a node pmxcfs has no address for: its name
    assert local_node(tmp_path) == "pve1"
    assert cluster_nodes(tmp_path) == [
        ClusterNode("pve1", "10.0.0.1"),
        ClusterNode("pve2", "10.0.0.2"),
        ClusterNode("pve3", "pve3"),
    ]
    known = cluster_nodes(tmp_path)
    assert parse_node("pve2", known).address == "10.0.0.2"
    assert parse_node("pve9=192.0.2.9", known) == ClusterNode("pve9", "192.0.2.9")


@pytest.mark.parametrize(
    "spec", ["-oProxyCommand=sh", "pve2=-oProxyCommand=x", "a b", "pve2=1.2.3.4 x", "../x"]
)
def test_hostile_node_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_node(spec, [])


def test_hostile_node_name_in_cluster_files(tmp_path: Path) -> None:
    members(tmp_path, "pve1", {"pve1": "10.0.0.1", "-oProxyCommand=touch /tmp/x": "1.2.3.4"})
    with pytest.raises(ConfigError, match="node name"):
        cluster_nodes(tmp_path)


def test_bad_bwlimit_is_one_error_line(isolated_env: Path) -> None:
    res = invoke("image", "distribute", "x:1", "--nodes", "pve2", "--bwlimit", "fast")
    assert res.exit_code == 1 and "--bwlimit" in res.stderr and len(res.stderr.splitlines()) == 1


@pytest.mark.slow
def test_distribute_over_ssh(
    isolated_env: Path, ssh_lab, scratch_pool, scratch_pool_b, store, put_image, tmp_path: Path
) -> None:
    node_b = add_node(ssh_lab, "node-b")
    pve = tmp_path / "etc-pve"
    members(pve, "node-a", {"node-a": "127.0.0.1", "node-b": node_b.address})
    (pve / "priv").mkdir()
    (pve / "priv" / "known_hosts").write_text(ssh_lab.known_hosts.read_text())
    with open(os.environ["LXCRI_CONFIG"], "a") as f:
        f.write(f"zfs_pool: {scratch_pool}\npve_root: {pve}\n")
    put_image(multilayer_image(), "test/img:latest")
    args = ["image", "distribute", "test/img:latest", "--identity", str(ssh_lab.key)]
    args += ["--target-pool", scratch_pool_b, "--bwlimit", "50m", "-o", "json"]
    res = invoke(*args)
    assert res.exit_code == 0, res.stderr
    [first] = json.loads(res.stdout)
    assert first["node"] == "node-b" and first["ok"] and len(first["sent"]) == 3
    assert 0 < first["wire_bytes"] < first["stream_bytes"]  # zstd on the wire
    layers = subprocess.run(
        ["zfs", "list", "-H", "-o", "name", "-r", f"{scratch_pool_b}/lxcri/layers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(layers) == 4  # the layers dataset and one per layer
    [again] = json.loads(invoke(*args, "--no-compress").stdout)
    assert again["sent"] == [] and again["wire_bytes"] == 0 and len(again["present"]) == 3
    # a node that cannot be reached: one line naming it, exit 1
    res = invoke("image", "distribute", "test/img:latest", "--nodes", "nowhere=192.0.2.1")
    assert res.exit_code == 1 and "nowhere" in res.stderr
