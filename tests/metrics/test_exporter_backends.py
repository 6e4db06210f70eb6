"""The exporter on a Proxmox node (the simulator's pve-local), with ZFS, over TLS, and its
one-line refusals."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

from lxcri_core.containers import engine
from lxcri_core.spec.options import RunOptions
from tests.conftest import run_lxcri
from tests.metrics.conftest import Exporter, start_exporter, stop_exporter
from tests.pvesim.fixtures import PveSim, pvesim  # noqa: F401 - fixture
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, make_dir, wait_for
from tests.support.registry import make_tls

pytestmark = pytest.mark.slow


@pytest.fixture
def running_exporter(lxenv: LxcEnv, tmp_path: Path) -> Iterator[Exporter]:
    exp = start_exporter(lxenv.env, tmp_path / "exporter.log")
    try:
        yield exp
    finally:
        stop_exporter(exp)


def test_pve_local_cts_storages_and_hookscript_durations(pvesim: PveSim) -> None:  # noqa: F811
    d = make_dir()
    env = pvesim.lxcri_env(d, "pve-local")
    layout = d / "layout"
    build_demo_layout(layout)
    assert run_lxcri("import", str(layout), "--name", DEMO_REF, env=env).returncode == 0
    out = run_lxcri(
        "run", "-d", "--name", "mweb", "--ip", f"{pvesim.ip(40)}/24", "--gateway",
        pvesim.gateway, DEMO_REF, env=env, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    vmid = out.stdout.strip()
    exp = start_exporter(env, d / "exporter.log", backend="pve-local")
    try:
        s = exp.scrape()
        ct = {"vmid": vmid, "name": "mweb", "image": DEMO_REF, "node": "pve1"}
        assert s.value("lxcri_container_state", state="running", **ct) == 1
        assert (s.value("lxcri_container_pids", **ct) or 0) >= 1  # the CT's cgroup, read here
        assert s.value("lxcri_container_info", backend="pve-local", **ct) == 1
        assert s.value("lxcri_storage_size_bytes", storage="local", node="pve1") is not None, (
            [ln for ln in s.text.splitlines() if "storage" in ln],
            exp.log.read_text(),
        )
        assert (s.value("lxcri_storage_available_bytes", storage="local", node="pve1") or -1) >= 0
        # the Proxmox hookscript ran pre-start and post-start: their durations are kept
        assert (s.value("lxcri_hook_runs_total", hook="pre-start") or 0) >= 1
        assert s.value("lxcri_collector_up", collector="storage") == 1
    finally:
        stop_exporter(exp)
        run_lxcri("destroy", "--force", vmid, env=env, timeout=180)


def test_zfs_datasets_and_local_storage(lxenv: LxcEnv, zfs_dataset: str, tmp_path: Path) -> None:
    conf = Path(os.environ["LXCRI_CONFIG"])
    # storage read at every scrape (zfs-fuse counts the file's blocks a few seconds late)
    conf.write_text(conf.read_text() + f"zfs_pool: {zfs_dataset}\nexporter_storage_ttl: 0\n")
    child = f"{zfs_dataset}/data"
    subprocess.run(["zfs", "create", child], check=True, capture_output=True)
    mnt = subprocess.run(
        ["zfs", "get", "-H", "-o", "value", "mountpoint", child],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(mnt) / "blob").write_bytes(os.urandom(1 << 20))
    engine.create(lxenv.config(), BUSYBOX_REF, _opts("z1"))  # storage/overlay (or dir) in use
    lxenv.remember("z1")
    exp = start_exporter({**lxenv.env, "LXCRI_CONFIG": str(conf)}, tmp_path / "exp.log")
    try:

        def same_as_zfs() -> bool:
            got = exp.scrape().value("lxcri_zfs_dataset_used_bytes", dataset=child)
            return got is not None and got == _zfs_used(child) > 0

        wait_for(same_as_zfs, what="the dataset's usage as zfs reports it")
        s = exp.scrape()
        assert s.value("lxcri_zfs_dataset_referenced_bytes", dataset=child) is not None
        local = [
            (labels, v)
            for (n, labels), v in s.samples.items()
            if (n == "lxcri_storage_size_bytes" and ("storage", "lxcri-overlay") in labels)
            or (n == "lxcri_storage_size_bytes" and ("storage", "lxcri-dir") in labels)
        ]
        assert local and all(v > 0 for _, v in local)
    finally:
        stop_exporter(exp)


def _zfs_used(dataset: str) -> int:
    out = subprocess.run(
        ["zfs", "get", "-Hp", "-o", "value", "used", dataset],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return int(out) if out.isdigit() else -1


def _opts(name: str) -> RunOptions:
    return RunOptions(name=name, args=("exec sleep 300",))


def test_tls_serves_https_only(lxenv: LxcEnv, tmp_path: Path) -> None:
    ca, crt, key = make_tls(tmp_path / "tls")
    exp = start_exporter(
        lxenv.env, tmp_path / "exp.log", "--tls-cert", str(crt), "--tls-key", str(key), ca=ca
    )
    try:
        assert exp.scrape().value("lxcri_collector_up", collector="images") == 1
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            urllib.request.urlopen(f"http://127.0.0.1:{exp.port}/metrics", timeout=5).read()
    finally:
        stop_exporter(exp)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--listen", "nope"), "listen address 'nope' is not HOST:PORT (e.g. 127.0.0.1:9464)"),
        (("--listen", "example.com:9464"), "'example.com' is not an IP address"),
        (("--tls-cert", "/nonexistent.pem"), "--tls-cert and --tls-key go together"),
    ],
)
def test_bad_options_are_one_line(args: tuple[str, ...], message: str) -> None:
    p = run_lxcri("--backend", "lxc", "exporter", *args, timeout=30)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("lxcri: error: ")
    assert message in p.stderr


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = run_lxcri("--backend", "lxc", "exporter", "--listen", f"127.0.0.1:{port}", timeout=30)
    assert p.returncode == 1
    assert p.stderr == f"lxcri: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_a_failing_source_is_up_0_and_the_rest_is_served(lxenv: LxcEnv, tmp_path: Path) -> None:
    conf = Path(os.environ["LXCRI_CONFIG"])
    conf.write_text(conf.read_text() + "zfs_pool: nosuchpool/lxcri\n")
    exp = start_exporter({**lxenv.env, "LXCRI_CONFIG": str(conf)}, tmp_path / "exp.log")
    try:
        s = exp.scrape()
        assert s.value("lxcri_collector_up", collector="storage") == 0
        assert s.value("lxcri_collector_up", collector="containers") == 1
        assert s.value("lxcri_images") is not None
    finally:
        stop_exporter(exp)
    lines = exp.log.read_text().splitlines()  # one line a failed scrape, no traceback
    assert lines and all(
        ln.startswith("lxcri: warning: metrics source failed (collector=storage, error=")
        for ln in lines
    ), lines


def test_concurrent_scrapes_share_collections(lxenv: LxcEnv, running_exporter: Exporter) -> None:
    """Anyone on the host can connect: a burst of requests must not cost a collection
    each (they wait for one another and share what was read after they asked)."""
    import json
    import secrets
    import threading

    # 300 containers (records only, as bench/list makes them): a collection takes a while
    engine.create(lxenv.config(), BUSYBOX_REF, _opts("c0"))
    lxenv.remember("c0")
    template = json.loads((lxenv.state_dir("c0") / "lxcri.json").read_text())
    for i in range(300):
        sdir = lxenv.state_dir(f"f{i}")
        sdir.mkdir(mode=0o700)
        doc = {**template, "name": f"f{i}", "id": secrets.token_hex(32), "vmid": 5000 + i}
        (sdir / "lxcri.json").write_text(json.dumps(doc))
    exp = running_exporter
    before = exp.scrape().value("lxcri_exporter_collections_total") or 0
    n = 20
    barrier = threading.Barrier(n)
    results: list[float | None] = []

    def one() -> None:
        barrier.wait()
        results.append(exp.scrape().value("lxcri_collector_up", collector="containers"))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [1.0] * n
    after = exp.scrape().value("lxcri_exporter_collections_total") or 0
    for i in range(300):  # records only: nothing else to remove
        shutil.rmtree(lxenv.state_dir(f"f{i}"))
    assert after - before - 1 <= n // 2, (before, after)  # the -1: the last scrape's own
