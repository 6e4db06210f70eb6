"""Benchmark: ``list()`` of the plain-LXC backend for many containers, in one bulk read.

Run as ``.venv/bin/python -m bench.list [--count 500] [--running 2] [--runs 11]``.
A few real containers are created (``--running`` of them started), then their
record is copied under new names, ids and VMIDs until there are ``--count``
containers: a record and an ``exit.json`` each, no LXC container behind them
(listing reads records and state files; LXC's state comes in bulk for all).

Prints the median time of ``LxcBackend.list()`` in this process, the time of
the same listing the old way (two ``lxc-info`` per container, measured on the
real ones and scaled), and the wall time of ``lxcri list -o json``.
Goal: ``list()`` of 500 containers < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import time

from bench.common import timed
from lxcri_core.backend import open_backend
from lxcri_core.containers import engine, lxc
from lxcri_core.spec.options import RunOptions
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, new_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--running", type=int, default=2)
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args(argv)
    lx = new_env()
    try:
        _bench(lx, args.count, args.running, args.runs)
    finally:
        left = lx.close()
        if left:
            print(f"warning: left behind: {left}", file=sys.stderr)
    return 0


def _bench(lx: LxcEnv, count: int, running: int, runs: int) -> None:
    lx.add_image(busybox_image(), BUSYBOX_REF)
    cfg = lx.config()
    real = max(running, 3)
    for i in range(real):
        engine.create(cfg, BUSYBOX_REF, RunOptions(name=f"real{i}", args=("sleep 600",)))
        lx.remember(f"real{i}")
        if i < running:
            engine.start(cfg, f"real{i}")
    template = json.loads((lx.state_dir("real0") / "lxcri.json").read_text())
    exit_doc = json.dumps({"exit_code": 0, "finished": "2026-01-01T00:00:00+00:00"})
    for i in range(count - real):
        name = f"fake{i:04d}"
        sdir = lx.state_dir(name)
        sdir.mkdir(mode=0o700)
        doc = {**template, "name": name, "id": secrets.token_hex(32), "vmid": 10_000 + i}
        (sdir / "lxcri.json").write_text(json.dumps(doc))
        (sdir / "exit.json").write_text(exit_doc)
        (sdir / "started.json").write_text('{"started": "2026-01-01T00:00:00+00:00"}')
    backend = open_backend(cfg, "lxc")
    assert len(backend.list()) == count  # warm-up; older records get their VMIDs here
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        items = backend.list()
        times.append(time.perf_counter() - t0)
    assert sum(c.status == "running" for c in items) == running
    path = engine.lxcpath(cfg)
    names = [c.name for c in items]
    bulk = []
    for _ in range(runs):  # of which LXC's states (one lxc-ls when any runs)
        t0 = time.perf_counter()
        lxc.states(path, names)
        bulk.append(time.perf_counter() - t0)
    # the old way: lxc-info for the state, lxc-info for the pid, per container
    t0 = time.perf_counter()
    for i in range(real):
        lxc.state(f"real{i}", path)
        lxc.init_pid(f"real{i}", path)
    per_ct = (time.perf_counter() - t0) / real
    env = {**os.environ, **lx.env}
    cli = [timed([sys.executable, "-m", "lxcri_pve.cli.main", "list", "-o", "json"], env)]
    cli += [timed([sys.executable, "-m", "lxcri_pve.cli.main", "list", "-o", "json"], env)]
    print(f"containers: {count} ({running} running)")
    print(f"list() median of {runs}: {statistics.median(times) * 1000:.1f} ms")
    print(f"  min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    print(f"  of which LXC's states: {statistics.median(bulk) * 1000:.1f} ms")
    print(
        f"old way (2 lxc-info per container): {per_ct * 1000:.1f} ms per container, "
        f"{per_ct * count:.2f} s for {count}"
    )
    print(f"`lxcri list -o json` wall time: {min(cli) * 1000:.0f} ms")
    for i in range(running):
        engine.stop(cfg, f"real{i}", timeout=0)
    for i in range(count - real):  # records only: nothing else to remove
        shutil.rmtree(lx.state_dir(f"fake{i:04d}"))


if __name__ == "__main__":
    sys.exit(main())
