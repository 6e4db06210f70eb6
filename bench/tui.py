"""Benchmark: the dashboard with 500 containers of the Proxmox simulator.

Run as ``.venv/bin/python -m bench.tui [--count 500] [--seconds 10]``.
The simulator is started and one CT is made in it through the pve-api backend
(as ``lxcri run -d``); its ``ContainerStatus`` from the backend's bulk list is
copied into ``--count`` containers (own VMIDs, names, addresses), which a data
source hands the dashboard with changing CPU, memory and states on each reload,
so every refresh changes cells. The app runs headless at 120x36, refreshing
every 0.5 s.

Prints: the time to first paint (app start to the table holding every
container, drawn); the UI thread's time per refresh (applying a reload to the
table: the median and the worst); the longest the event loop was kept from
running (a 5 ms ticker's worst lateness: a frame or a key waits that long), while
it only refreshes and then while keys are typed (moving, the filter);
the backend's own ``list()`` time (in a worker, off the UI thread).
Goals: first paint < 1 s, refresh < 100 ms, no frame blocked > 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time

from lxcri_tui.app import LxcriApp
from lxcri_tui.screens.containers import ContainersScreen
from lxcri_tui.source import Usage

from lxcri_core.backend import ContainerStatus, open_backend
from lxcri_core.config import load_config
from tests.tui.recorded import RecordedSource


class ChangingSource(RecordedSource):
    """``count`` copies of one CT; every reload changes usage and a tenth of the states."""

    def __init__(self, containers: list[ContainerStatus]) -> None:
        super().__init__(containers)
        self.round = 0

    def containers(self) -> list[ContainerStatus]:
        self.round += 1
        r = self.round
        return [
            dataclasses.replace(c, status="exited") if (c.vmid + r) % 10 == 0 else c
            for c in self.cts
        ]

    def usage(self, cts: list[ContainerStatus]) -> dict[int, Usage]:
        r = self.round
        return {
            c.vmid: Usage((c.vmid * 7 + r * 13) % 400 / 4, (c.vmid % 50 + r) * 1_000_000, None)
            for c in cts
            if c.status == "running"
        }


def _one_ct() -> tuple[ContainerStatus, float]:
    """A CT of the simulator as its pve-api list reports it, and that list's time."""
    from lxcri_pve.demo_image import DEMO_REF

    from tests.pve.test_cli_backends import Cli
    from tests.pvesim.fixtures import start_sim

    sim = start_sim()
    try:
        cli = Cli(sim, "pve-api")
        vmid = cli.ok(
            "run", "-d", "--name", "bench", "--ip", f"{sim.ip(50)}/24",
            "--gateway", sim.gateway, DEMO_REF,
        ).strip()  # fmt: skip
        try:
            cfg = load_config(env={**os.environ, **cli.env})
            backend = open_backend(cfg)
            t0 = time.perf_counter()
            [ct] = [c for c in backend.list() if str(c.vmid) == vmid]
            return ct, time.perf_counter() - t0
        finally:
            cli("destroy", "--force", vmid)
    finally:
        sim.close()


def _copies(ct: ContainerStatus, count: int) -> list[ContainerStatus]:
    return [
        dataclasses.replace(
            ct,
            vmid=1000 + i,
            name=f"ct{i:04d}",
            id=str(1000 + i),
            ipv4=f"10.99.{i // 250}.{i % 250 + 2}",
        )
        for i in range(count)
    ]


async def _run(cts: list[ContainerStatus], seconds: float) -> dict[str, float]:
    app = LxcriApp(ChangingSource(cts), refresh=0.5)
    lags: list[float] = []
    t0 = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, ContainersScreen)
        while screen.table.row_count < len(cts):
            await pilot.pause(0.005)
        await pilot.pause()  # the frame that shows them
        first = time.perf_counter() - t0

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                lags.append(now - last - 0.005)
                last = now

        task = asyncio.create_task(ticker())
        loads = screen.loads
        await pilot.pause(seconds)  # refreshes only
        refresh_lags = sorted(lags)
        lags.clear()
        # then a person at work while it refreshes: moving, filtering, leaving the filter
        # (a focus change makes Textual's footer rebuild its keys)
        for key in ("down", "down", "slash", "c", "t", "escape", "down"):
            await pilot.press(key)
            await pilot.pause(0.2)
        task.cancel()
        applied = screen.apply_times[1:]  # after the first fill
        refreshes = screen.loads - loads
    return {
        "first": first,
        "median": statistics.median(applied),
        "worst": max(applied),
        "lag": refresh_lags[-1],
        "lag99": refresh_lags[len(refresh_lags) * 99 // 100],
        "keys_lag": max(lags),
        "refreshes": refreshes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args(argv)
    ct, list_time = _one_ct()
    r = asyncio.run(_run(_copies(ct, args.count), args.seconds))
    print(f"tui, {args.count} containers (copies of a simulator CT), 120x36, refresh 0.5 s")
    print(f"  first paint:              {r['first'] * 1000:7.1f} ms  (goal < 1000)")
    print(
        f"  UI thread per refresh:    {r['median'] * 1000:7.1f} ms median, "
        f"{r['worst'] * 1000:.1f} ms worst over {int(r['refreshes'])} refreshes  (goal < 100)"
    )
    print(
        f"  longest blocked loop:     {r['lag'] * 1000:7.1f} ms while refreshing  (goal < 50; "
        f"99th percentile {r['lag99'] * 1000:.1f} ms)"
    )
    print(f"                            {r['keys_lag'] * 1000:7.1f} ms with keys and focus changes")
    print(f"  pve-api list() of 1 CT:   {list_time * 1000:7.1f} ms  (in a worker)")
    ok = r["first"] < 1 and r["worst"] < 0.1 and r["lag"] < 0.05
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
