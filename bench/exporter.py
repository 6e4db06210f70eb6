"""Benchmark: one scrape of ``lxcri exporter`` with 500 containers, every one of them running.

Run as ``.venv/bin/python -m bench.exporter [--count 500] [--runs 11]``.
Two real containers are created and started; their record is copied under
new names, ids and VMIDs until there are ``--count`` containers (as
bench/list does). For the per-container counters to be read for all of
them, the backend's bulk list is wrapped so that every container reports
running with the init pid of one of the real ones: each scrape then reads
the cgroup and network files of ``--count`` running containers, as a host
with that many would (what is not measured: ``lxc-ls`` asking that many
live monitors, which bench/list measures for the running ones it has).

Prints the median time of the collector in this process (the whole
registry, text exposition included), of the container part alone, and of an
HTTP scrape of a real ``lxcri exporter`` process (containers as on disk:
two running). Goal: a scrape of 500 containers < 200 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from prometheus_client import generate_latest

from lxcri_core.backend import ContainerStatus, open_backend
from lxcri_core.containers import engine
from lxcri_core.metrics.server import registry_for
from lxcri_core.spec.options import RunOptions
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, new_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args(argv)
    lx = new_env()
    try:
        _bench(lx, args.count, args.runs)
    finally:
        left = lx.close()
        if left:
            print(f"warning: left behind: {left}", file=sys.stderr)
    return 0


class AllRunning:
    """The real backend, every container reported running with a real init's pid."""

    def __init__(self, inner: Any, pids: list[int]) -> None:
        self.inner, self.pids = inner, pids
        self.name = inner.name

    def list(self) -> list[ContainerStatus]:
        return [
            dataclasses.replace(c, status="running", pid=self.pids[i % len(self.pids)])
            for i, c in enumerate(self.inner.list())
        ]


def _bench(lx: LxcEnv, count: int, runs: int) -> None:
    lx.add_image(busybox_image(), BUSYBOX_REF)
    cfg = lx.config()
    pids = []
    for i in range(2):
        engine.create(cfg, BUSYBOX_REF, RunOptions(name=f"real{i}", args=("exec sleep 600",)))
        lx.remember(f"real{i}")
        engine.start(cfg, f"real{i}")
        pid = engine.status(cfg, f"real{i}").pid
        assert pid
        pids.append(pid)
    template = json.loads((lx.state_dir("real0") / "lxcri.json").read_text())
    for i in range(count - 2):
        name = f"fake{i:04d}"
        sdir = lx.state_dir(name)
        sdir.mkdir(mode=0o700)
        doc = {**template, "name": name, "id": secrets.token_hex(32), "vmid": 10_000 + i}
        (sdir / "lxcri.json").write_text(json.dumps(doc))
        (sdir / "started.json").write_text('{"started": "2026-01-01T00:00:00+00:00"}')
    backend = AllRunning(open_backend(cfg, "lxc"), pids)
    reg = registry_for(cfg, backend)  # type: ignore[arg-type]
    text = generate_latest(reg).decode()  # warm-up
    assert text.count("lxcri_container_pids{") == count, "every container's pids"
    whole, part = [], []
    from lxcri_core.metrics.container_metrics import container_metrics

    for _ in range(runs):
        t0 = time.perf_counter()
        generate_latest(reg)
        whole.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        container_metrics(backend, "bench")  # type: ignore[arg-type]
        part.append(time.perf_counter() - t0)
    http = _http_scrapes(lx, runs)
    print(f"containers: {count}, each read as running (cgroup + net files)")
    print(f"registry -> text, median of {runs}: {statistics.median(whole) * 1000:.1f} ms")
    print(f"  min {min(whole) * 1000:.1f} ms, max {max(whole) * 1000:.1f} ms")
    print(f"  of which the containers: {statistics.median(part) * 1000:.1f} ms")
    print(f"  exposition size: {len(text) / 1024:.0f} KiB")
    print(
        f"HTTP scrape of `lxcri exporter` ({count} on disk, 2 running), median of {runs}: "
        f"{statistics.median(http) * 1000:.1f} ms"
    )
    print("goal: a scrape of 500 containers < 200 ms")
    for i in range(2):
        engine.stop(cfg, f"real{i}", timeout=0)
    for i in range(count - 2):
        shutil.rmtree(lx.state_dir(f"fake{i:04d}"))


def _http_scrapes(lx: LxcEnv, runs: int) -> list[float]:
    port = free_port()
    exe = [sys.executable, "-m", "lxcri_pve.cli.main", "--backend", "lxc", "exporter"]
    proc = subprocess.Popen(
        [*exe, "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, **lx.env},
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("bench: the exporter did not come up")
                time.sleep(0.1)
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            urllib.request.urlopen(url, timeout=10).read()
            out.append(time.perf_counter() - t0)
        return out
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
