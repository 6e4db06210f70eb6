"""The exporter scraped over HTTP while real containers run: values move as they should."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.metrics.catalogue import METRICS
from lxcri_core.spec.options import RunOptions
from tests.containers.conftest import Lxcri
from tests.metrics.conftest import Exporter, Scrape
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, wait_for
from tests.support.registry import push_image, start_registry

pytestmark = pytest.mark.slow


def _matches_the_catalogue(scrape: Scrape) -> None:
    """What the exporter produced is what METRICS (the dashboard's test's list) says."""
    from tests.metrics.test_dashboard import base

    for name, labels in scrape.samples:
        if not name.startswith("lxcri_"):
            continue
        assert base(name) in METRICS, name
        assert {k for k, _ in labels} <= set(METRICS[base(name)]), (name, labels)


def _ct(scrape: Scrape, metric: str, ct: str, **more: str) -> float | None:
    return scrape.value(metric, name=ct, **more)


def test_running_container_state_pids_cpu_and_info(exporter: Exporter, lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    lxenv.start("m1", args=("exec sleep 300",), pids_limit="50", memory="64m")
    first = exporter.scrape()
    vmid = str(engine.status(cfg, "m1").vmid)
    labels = {"name": "m1", "vmid": vmid, "image": BUSYBOX_REF}
    assert first.value("lxcri_container_state", state="running", **labels) == 1
    assert first.value("lxcri_container_state", state="exited", **labels) is None
    info = first.value("lxcri_container_info", **labels, image_digest=lxenv.images[BUSYBOX_REF])
    assert info == 1
    assert first.value("lxcri_container_pids_limit", **labels) == 50
    assert first.value("lxcri_container_memory_limit_bytes", **labels) == 64 << 20
    pids0 = first.value("lxcri_container_pids", **labels)
    assert pids0 is not None and pids0 >= 1
    # two more processes in the container: the pids gauge follows
    p = engine.status(cfg, "m1").pid
    assert p is not None
    rc = os.system(
        f"lxc-attach -n m1 -P {lxenv.lxcpath} -- /bin/sh -c "
        "'sleep 300 </dev/null >/dev/null 2>&1 & sleep 300 </dev/null >/dev/null 2>&1 &'"
    )
    assert rc == 0
    wait_for(
        lambda: (exporter.scrape().value("lxcri_container_pids", **labels) or 0) >= pids0 + 2,
        what="pids to grow by two",
    )
    cpu = exporter.scrape().value("lxcri_container_cpu_seconds_total", **labels)
    assert cpu is not None and cpu >= 0
    assert (
        exporter.scrape().value("lxcri_container_network_receive_bytes_total", **labels) is not None
    )
    assert first.value("lxcri_collector_up", collector="containers") == 1
    _matches_the_catalogue(first)


def test_restarts_count_a_killed_process(exporter: Exporter, lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    engine.create(
        cfg, BUSYBOX_REF, RunOptions(name="m2", args=("exec sleep 300",), restart="always")
    )
    lxenv.remember("m2")
    engine.start(cfg, "m2")
    pid = engine.status(cfg, "m2").pid
    assert pid
    assert _ct(exporter.scrape(), "lxcri_container_restarts_total", "m2") == 0
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: _ct(exporter.scrape(), "lxcri_container_restarts_total", "m2") == 1,
        timeout=30,
        what="the restart to be counted",
    )
    wait_for(
        lambda: _ct(exporter.scrape(), "lxcri_container_state", "m2", state="running") == 1,
        timeout=30,
        what="m2 running again",
    )


def test_hook_durations_are_observed(exporter: Exporter, lxenv: LxcEnv) -> None:
    before = exporter.scrape()
    assert before.value("lxcri_hook_duration_seconds_count", hook="pre-start") in (None, 0)
    lxenv.start("m3", args=("exec sleep 300",))
    after = exporter.scrape()
    assert after.value("lxcri_hook_duration_seconds_count", hook="pre-start") == 1
    assert after.value("lxcri_hook_runs_total", hook="pre-start") == 1
    took = after.value("lxcri_hook_duration_seconds_sum", hook="pre-start")
    assert took is not None and 0 < took < 10
    assert after.value("lxcri_hook_duration_seconds_bucket", hook="pre-start", le="+Inf") == 1
    engine.stop(lxenv.config(), "m3", timeout=2)
    wait_for(
        lambda: exporter.scrape().value("lxcri_hook_duration_seconds_count", hook="post-stop") == 1,
        what="the post-stop hook to be counted",
    )
    assert exporter.scrape().value("lxcri_hook_failures_total", hook="post-stop") == 0


def test_pulls_and_pull_errors_are_counted(
    exporter: Exporter, lxcri: Lxcri, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:  # docker-registry reads REGISTRY_* as its config
        m.delenv("REGISTRY_AUTH_FILE", raising=False)
        reg = start_registry(tmp_path / "reg")
    try:
        push_image(reg.addr, busybox_image(), "test/bb:1.0", tmp_path)
        before = exporter.scrape()
        assert before.value("lxcri_image_pulls_total", registry=reg.addr) is None
        images0 = before.value("lxcri_images")
        p = lxcri("pull", "--insecure", f"{reg.addr}/test/bb:1.0")
        assert p.returncode == 0, p.stderr
        bad = lxcri("pull", "--insecure", f"{reg.addr}/test/none:1.0")
        assert bad.returncode == 1
    finally:
        reg.stop()
    after = exporter.scrape()
    assert after.value("lxcri_image_pulls_total", registry=reg.addr) == 2
    assert after.value("lxcri_image_pull_errors_total", registry=reg.addr) == 1
    assert after.value("lxcri_image_pull_duration_seconds_count") == 2
    assert (after.value("lxcri_image_pull_duration_seconds_sum") or 0) > 0
    assert after.value("lxcri_images") == (images0 or 0) + 1
    _matches_the_catalogue(after)
