"""Benchmark: run time of lxcri's LXC hook against the bare interpreter floor.

Run as ``.venv/bin/python -m bench.hooks [--runs N]``. The hook is run as LXC
runs it (hook version 1: ``LXC_*`` in the environment; the interpreter the
config names, then ``hooks/lxcri-hook``):

- ``pre-start`` of a managed container with one published port (mounts the
  overlay rootfs, installs the port's nftables chains);
- ``post-stop`` of it (removes the chains, unmounts), alternating with pre-start;
- an unmanaged container (no ``lxcri.json`` beside its config): exit at once.

The floor is ``/usr/bin/python3 -c pass`` (and the hook's own interpreter).
Goal: each hook well under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from bench.common import timed
from lxcri_core.containers import engine
from lxcri_core.containers.paths import libexec
from lxcri_core.spec.options import RunOptions
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, make_dir, new_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args(argv)
    lx = new_env()
    try:
        _bench(lx, args.runs)
    finally:
        left = lx.close()
        if left:
            print(f"warning: left behind: {left}", file=sys.stderr)
    return 0


def _bench(lx: LxcEnv, runs: int) -> None:
    lx.add_image(busybox_image(), BUSYBOX_REF)
    cfg = lx.config()
    opts = RunOptions(name="hookbench", publish=(f"{free_port()}:80",))
    rec = engine.create(cfg, BUSYBOX_REF, opts)
    lx.remember("hookbench")
    hook = [sys.executable, str(libexec("lxcri-hook"))]
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LXC_HOOK_VERSION": "1"}
    managed = {
        **base,
        "LXC_NAME": rec.name,
        "LXC_CONFIG_FILE": str(lx.state_dir(rec.name) / "config"),
        "LXC_ROOTFS_PATH": rec.rootfs,
    }
    other = make_dir(lx.root)
    (other / "config").write_text("lxc.uts.name = other\n")
    unmanaged = {
        **base,
        "LXC_NAME": "other",
        "LXC_HOOK_TYPE": "pre-start",
        "LXC_CONFIG_FILE": str(other / "config"),
    }
    cases = {
        "/usr/bin/python3 -c pass (floor)": (["/usr/bin/python3", "-c", "pass"], base),
        f"{sys.executable} -c pass": ([sys.executable, "-c", "pass"], base),
        "hook, unmanaged container": (hook, unmanaged),
        "hook pre-start (mount, 1 port)": (hook, {**managed, "LXC_HOOK_TYPE": "pre-start"}),
        "hook post-stop (unpublish, umount)": (hook, {**managed, "LXC_HOOK_TYPE": "post-stop"}),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for argv, env in cases.values():  # warm-up: page cache, .pyc files
        timed(argv, env)
    for _ in range(runs):
        for key, (argv, env) in cases.items():  # pre-start, then post-stop: a real cycle
            times[key].append(timed(argv, env))
    log = (lx.state_dir(rec.name) / "hooks.log").read_text()
    if "FAILED" in log:
        sys.exit(f"bench: a hook run failed:\n{log}")

    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med["/usr/bin/python3 -c pass (floor)"]
    print(f"runs: {runs} each (after one warm-up), median wall time of the process")
    for key, value in med.items():
        ratio = "" if key.endswith("(floor)") else f"  {value / floor:5.1f} x floor"
        print(f"{key:44s} {value * 1000:6.1f} ms{ratio}")
    print("goal: each hook well under 100 ms")


if __name__ == "__main__":
    raise SystemExit(main())
