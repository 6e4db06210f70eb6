"""The Proxmox rows of ``bench.run``: ``lxcri run -d`` on pve-local and pve-api.

Both run against the Proxmox simulator (tests/pvesim), which starts real LXC
containers and calls lxcri's hookscript in Proxmox's phases. The CLI is
pointed at it as an admin would (``LXCRI_BACKEND``, ``LXCRI_PVE_*``, the fake
pct/pvesh first on PATH). The container's process signals by connecting to a
TCP port of the bench on the simulator's bridge: a token may not bind-mount
the FIFO the other rows use, and pve-api has no foreground run. The command
that connects is the image's own CMD (the bench image with that CMD, imported
into each backend's store): the simulator's OCI create writes the image's
entrypoint over the one pve-api sends, so run arguments would not reach the
CT there. Each run gets its own address; the ``destroy --force`` after it is
untimed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

from bench.run import time_to_connect
from tests.pvesim.fixtures import PveSim, start_sim
from tests.support.images import Image, write_layout
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, make_dir

#: The first host number of the CTs' addresses on the simulator's /24.
FIRST_HOST = 40


@contextlib.contextmanager
def pve_variants(
    lx: LxcEnv, img: Image, clis: dict[str, str], env: dict[str, str], backends: list[str]
) -> Iterator[dict[str, Callable[[], float]]]:
    """One timed variant per backend in ``backends`` (pve-local, pve-api) and lxcri command
    in ``clis`` (row label suffix -> command, sharing the backend's root); the simulator
    runs until the context ends, then every CT, the bridge and the roots are removed."""
    sim = start_sim()
    work = make_dir()
    listener = socket.socket()
    try:
        listener.bind((sim.gateway, 0))
        listener.listen(16)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        script = f"/bin/busybox nc {sim.gateway} {port} </dev/null; exec /bin/busybox sleep 600"
        layout = work / "layout"
        write_layout(layout, dataclasses.replace(img, config={**img.config, "Cmd": [script]}))
        hosts = iter(range(FIRST_HOST, 255))
        out: dict[str, Callable[[], float]] = {}
        for backend in backends:
            benv = {**env, **sim.lxcri_env(work / backend, backend)}
            _check(subprocess.run(
                [next(iter(clis.values())), "import", str(layout), "--name", BUSYBOX_REF],
                env=benv, capture_output=True, text=True, timeout=120,
            ))  # fmt: skip
            for label, cli in clis.items():
                out[f"lxcri run -d ({backend}){label}"] = _runner(cli, benv, sim, listener, hosts)
        yield out
    finally:
        listener.close()
        sim.close()
        shutil.rmtree(work, ignore_errors=True)


def _runner(
    lxcri: str,
    env: dict[str, str],
    sim: PveSim,
    listener: socket.socket,
    hosts: Iterator[int],
) -> Callable[[], float]:
    gw: str = sim.gateway

    def run() -> float:
        ip = sim.ip(next(hosts))
        argv = [lxcri, "run", "-d", "--ip", f"{ip}/24", "--gateway", gw, BUSYBOX_REF]
        elapsed, out = time_to_connect(argv, listener, env)
        vmid = out.strip().splitlines()[-1]
        _check(subprocess.run(
            [lxcri, "destroy", "--force", vmid], env=env, capture_output=True, text=True,
            timeout=120,
        ))  # fmt: skip
        return elapsed

    return run


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, proc.args[:3]))} failed: {proc.stderr.strip()}")
