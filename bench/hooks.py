"""Benchmark: run time of lxcri's LXC hook against the bare interpreter floor.

Run as ``.venv/bin/python -m bench.hooks [--runs N]``. The hook is run as LXC
runs it (hook version 1: ``LXC_*`` in the environment; the interpreter the
config names, then ``hooks/lxcri-hook``):

- ``pre-start`` of a managed container with one published port (mounts the
  overlay rootfs, installs the port's nftables chains);
- ``post-stop`` of it (removes the chains, unmounts), alternating with pre-start;
- an unmanaged container (no ``lxcri.json`` beside its config): exit at once.

And lxcri's Proxmox hookscript as PVE runs it (``SCRIPT VMID PHASE``, the
snippet pve-local installs), for a pve-local CT of the Proxmox simulator
(tests/pvesim) with one published port and a static address (``--no-pve``
skips it):

- ``pre-start`` (makes the CT's volume directories private, takes back
  whatever a crash left published);
- ``post-start`` (publishes the port: the plain-LXC pre-start's nftables work);
- ``post-stop`` (unpublishes), in that order, a real cycle.

The floor is ``/usr/bin/python3 -c pass`` (and the hook's own interpreter).
Goal (issue 8): each hook toward 2x the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import timed
from lxcri_core.containers import engine
from lxcri_core.containers.paths import libexec
from lxcri_core.spec.options import RunOptions
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port, make_dir, new_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--no-pve", action="store_true", help="skip the Proxmox hookscript rows")
    args = ap.parse_args(argv)
    lx = new_env()
    try:
        cases = _lxc_cases(lx)
        with _pve_cases(not args.no_pve) as pve:
            cases.update(pve)
            times = _measure(cases, args.runs)
        log = (lx.state_dir("hookbench") / "hooks.log").read_text()
        if "FAILED" in log:
            sys.exit(f"bench: a hook run failed:\n{log}")
    finally:
        left = lx.close()
        if left:
            print(f"warning: left behind: {left}", file=sys.stderr)
    _report(times, args.runs)
    return 0


Cases = dict[str, tuple[list[str], dict[str, str]]]


def _lxc_cases(lx: LxcEnv) -> Cases:
    lx.add_image(busybox_image(), BUSYBOX_REF)
    cfg = lx.config()
    opts = RunOptions(name="hookbench", publish=(f"{free_port()}:80",))
    rec = engine.create(cfg, BUSYBOX_REF, opts)
    lx.remember("hookbench")
    hook = [sys.executable, str(libexec("lxcri-hook"))]
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LXC_HOOK_VERSION": "1", **_PYPATH}
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
    return {
        FLOOR: (["/usr/bin/python3", "-c", "pass"], base),
        f"{sys.executable} -c pass": ([sys.executable, "-c", "pass"], base),
        "hook, unmanaged container": (hook, unmanaged),
        "hook pre-start (mount, 1 port)": (hook, {**managed, "LXC_HOOK_TYPE": "pre-start"}),
        "hook post-stop (unpublish, umount)": (hook, {**managed, "LXC_HOOK_TYPE": "post-stop"}),
    }


FLOOR = "/usr/bin/python3 -c pass (floor)"
#: PYTHONPATH is handed on to the hooks: to bench another checkout's code (an export of
#: an older commit, ``plugin/`` as ``lxcri_pve``) against this one on the same machine.
_PYPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


@contextmanager
def _pve_cases(wanted: bool) -> Iterator[Cases]:
    """The hookscript rows: a simulator, a pve-local CT (not started: the phases are run
    here, as ``pct start``/``pct stop`` would run them), torn down afterwards."""
    if not wanted:
        yield {}
        return
    from lxcri_pve.backends.pve_local import PveLocalBackend
    from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

    from lxcri_core.backend import CreateRequest, open_backend
    from lxcri_core.config import load_config
    from lxcri_core.images import import_image
    from tests.pvesim.fixtures import start_sim

    sim = start_sim()
    saved = dict(os.environ)
    root = make_dir()
    vmid = 0
    be: PveLocalBackend | None = None
    try:
        env = {
            "PATH": f"{sim.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PVESIM_DIR": str(sim.dir),
            "LXCRI_ROOT": str(root),
            "LXCRI_PVE_ROOT": str(sim.dir / "etc-pve"),
            "LXCRI_PVE_NODE": "pve1",
            "LXCRI_PVE_LXCPATH": str(sim.dir / "lxc"),
            "LXCRI_PVE_BRIDGE": sim.bridge,
        }
        os.environ.update(env)
        cfg = load_config()
        build_demo_layout(root / "demo-layout")
        import_image(cfg, root / "demo-layout", DEMO_REF)
        opened = open_backend(cfg, "pve-local")
        assert isinstance(opened, PveLocalBackend)
        be = opened
        opts = RunOptions(
            name="hookbench",
            publish=(f"{free_port()}:80",),
            ip=f"{sim.ip(10)}/24",
            gateway=sim.gateway,
        )
        vmid = be.create(CreateRequest(image=DEMO_REF, options=opts, vmid=sim.vmid())).vmid
        script = sim.dir / "storage" / "local" / "snippets" / "lxcri-hookscript"
        # what PVE passes a hookscript (its own environment) plus where the simulator is
        henv = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env, **_PYPATH}
        yield {
            f"pve {phase}{what}": ([str(script), str(vmid), phase], henv)
            for phase, what in (
                ("pre-start", " (private volumes, unpublish)"),
                ("post-start", " (publish 1 port)"),
                ("post-stop", " (unpublish)"),
            )
        }
        log = Path(cfg.root) / "pve" / str(vmid) / "hooks.log"
        if log.exists() and "failed" in log.read_text():
            sys.exit(f"bench: a hookscript run failed:\n{log.read_text()}")
    finally:
        if be is not None and vmid:
            from lxcri_core.backend import CtRef

            try:
                be.remove(CtRef(str(vmid)), force=True)
            except Exception as e:
                print(f"warning: CT {vmid} not removed: {e}", file=sys.stderr)
        os.environ.clear()
        os.environ.update(saved)
        sim.close()


def _measure(cases: Cases, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    for argv, env in cases.values():  # warm-up: page cache, .pyc files
        timed(argv, env)
    for _ in range(runs):
        for key, (argv, env) in cases.items():  # pre-start, then post-stop: a real cycle
            times[key].append(timed(argv, env))
    return times


def _report(times: dict[str, list[float]], runs: int) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med[FLOOR]
    print(f"runs: {runs} each (after one warm-up), median wall time of the process")
    for key, value in med.items():
        ratio = "" if key == FLOOR else f"  {value / floor:5.1f} x floor"
        print(f"{key:48s} {value * 1000:6.1f} ms{ratio}")
    print("goal: each hook toward 2x the floor")


if __name__ == "__main__":
    raise SystemExit(main())
