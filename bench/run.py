"""Benchmark: command to running process, ``lxcri run`` against LXC's OCI template.

Run as ``.venv/bin/python -m bench.run [--runs N]``. The image (busybox-static)
is cached for both: in lxcri's store, its layers already prepared by a
warm-up run; as a local OCI layout for ``lxc-create -t oci``, which has no
cache of unpacked layers and unpacks with umoci on every create (that is the
peer's real path). The clock starts when the command is spawned and stops
when the container's process writes a byte into a FIFO bind-mounted from
the host, so start-up is measured, not teardown (which runs afterwards,
untimed). Variants, alternating per run, medians compared:

- ``lxcri run --rm`` as a user runs it: unprivileged, lxcri's bridge, seccomp;
- ``lxcri run --rm --network none``;
- ``lxc-create -t oci`` + ``lxc-execute``: privileged, no network (its
  fastest configuration: an id-mapped create would also chown the rootfs);
- ``lxc-execute`` alone of a container created beforehand: the floor that
  both paths share (LXC's own start-up).

Each runs for the bare busybox image and for busybox plus a ``--mb`` MB layer
of files (an application image's size). Goal: lxcri <= 0.25 x the lxc-oci path.
``--baseline CMD`` adds the same lxcri rows for another build (an older one),
interleaved with these, so that a before/after sees the same load.

The Proxmox backends (``--backends``, default all of lxc, pve-local and
pve-api) run on the simulator (tests/pvesim: the fake pct/pvesh, the HTTPS API,
real LXC containers started through the hookscript), bare busybox only:
``lxcri run -d`` until the container's process connects to a TCP port of the
bench on the simulator's bridge (a token cannot bind-mount the FIFO, and
pve-api has no foreground run); the destroy afterwards is untimed. Each is
printed with its ratio to the lxc-oci path of the same run.

Every Python process runs with bytecode caches (in ``PYCACHE``), as an
installed lxcri does (Debian byte-compiles on install): with
``PYTHONDONTWRITEBYTECODE`` set and no caches, each of the CLI, the hook and
the simulator's pct would compile its modules from source on every start
(~80 ms each). ``--no-bytecode-cache`` measures that way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.images import Entry, Image, Layer, busybox_image, make_tar, write_layout
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, make_dir, new_env, sh

SIGNAL = "echo x > /sig/fifo"
FILE_SIZE = 256 * 1024
BACKENDS = ("lxc", "pve-local", "pve-api")
#: Bytecode caches of the bench's Python processes (kept between bench runs).
PYCACHE = Path("/var/tmp/lxcri-bench-pycache")
#: The row every ratio is taken against.
PEER = "lxc-create -t oci + lxc-execute"


def python_env(cached: bool) -> dict[str, str]:
    """Set this process's environment (inherited by the simulator, hence by the
    hookscript) for bytecode written to and read from PYCACHE, or never; return it."""
    if cached:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
    return dict(os.environ)


def bench_image(mb: int) -> Image:
    """busybox, plus ``mb`` MB of incompressible files in a second layer when ``mb`` > 0."""
    img = busybox_image()
    if mb > 0:
        files = [
            Entry(f"app/f{i:05d}.bin", data=os.urandom(FILE_SIZE))
            for i in range(mb * 1024 * 1024 // FILE_SIZE)
        ]
        img.layers.append(Layer(make_tar([Entry("app", "dir", mode=0o755), *files]), "none"))
    return img


def time_to_signal(argv: list[str], fifo: Path, env: dict[str, str], timeout: float = 60) -> float:
    """Seconds from spawning ``argv`` to the first byte in ``fifo``; waits for the exit."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return _time_to(argv, fd, lambda: bool(os.read(fd, 64)), env, timeout)[0]
    finally:
        os.close(fd)


def time_to_connect(
    argv: list[str], listener: socket.socket, env: dict[str, str], timeout: float = 120
) -> tuple[float, str]:
    """Seconds from spawning ``argv`` to a connection on ``listener``, and the command's
    output; waits for the exit (``run -d`` returns once the container runs)."""

    def accepted() -> bool:
        with contextlib.suppress(BlockingIOError):
            listener.accept()[0].close()
            return True
        return False

    return _time_to(argv, listener.fileno(), accepted, env, timeout)


def _time_to(
    argv: list[str], fd: int, signalled: Callable[[], bool], env: dict[str, str], timeout: float
) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = start + timeout
    elapsed = None
    while elapsed is None and time.perf_counter() < deadline:
        for _fd, ev in poller.poll(20):
            if ev & select.POLLIN and signalled():
                elapsed = time.perf_counter() - start
        if elapsed is None and proc.poll() is not None and proc.returncode != 0:
            break
    out, _ = proc.communicate(timeout=timeout)
    if elapsed is None or proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])} failed ({proc.returncode}): {out.decode().strip()}")
    return elapsed, out.decode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--mb", type=int, default=64, help="size of the larger image's extra layer")
    ap.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, of {', '.join(BACKENDS)} (default: all); lxc-oci always runs",
    )
    ap.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="every Python process compiles its modules from source (PYTHONDONTWRITEBYTECODE)",
    )
    ap.add_argument(
        "--lxcri",
        default=str(Path(sys.executable).parent / "lxcri"),
        help="the lxcri command to measure (another build, say; default: this venv's)",
    )
    ap.add_argument(
        "--baseline",
        help="another lxcri command (an older build) measured beside it, interleaved, in "
        "rows marked [baseline]: a before/after under the same load",
    )
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        ap.error(f"--backends: {', '.join(bad) or 'none given'}: choose from {', '.join(BACKENDS)}")
    clis = {"": args.lxcri, **({" [baseline]": args.baseline} if args.baseline else {})}
    penv = python_env(not args.no_bytecode_cache)
    pve = [b for b in backends if b != "lxc"]
    for mb in (0, args.mb):
        env = new_env()
        try:
            _bench(env, clis, args.runs, mb, penv, "lxc" in backends, pve if mb == 0 else [])
        finally:
            left = env.close()
            if left:
                print(f"warning: left behind: {left}", file=sys.stderr)
    return 0


def _bench(
    lx: LxcEnv,
    clis: dict[str, str],
    runs: int,
    mb: int,
    penv: dict[str, str],
    with_lxc: bool,
    pve: list[str],
) -> None:
    img = bench_image(mb)
    lx.add_image(img, BUSYBOX_REF)
    layout = lx.root / "layout"
    write_layout(layout, img, "bb")
    sig = make_dir(lx.root)
    fifo = sig / "fifo"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)  # the unprivileged container's root is host uid 100000
    peer = make_dir(lx.root)
    conf = peer / "peer.conf"
    conf.write_text(
        f"lxc.net.0.type = empty\nlxc.mount.entry = {sig} sig none bind,create=dir 0 0\n"
    )
    env = {**penv, **lx.env, "LXCRI_CONFIG": "/dev/null"}

    def lxcri_run(cli: str, *opts: str) -> Callable[[], float]:
        argv = [cli, "run", "--rm", "-v", f"{sig}:/sig", *opts, BUSYBOX_REF, SIGNAL]
        return lambda: time_to_signal(argv, fifo, env)

    counter = [0]

    def lxc_oci() -> float:
        counter[0] += 1
        name, path = f"peer{counter[0]}", str(peer)
        script = (
            f"lxc-create -q -n {name} -P {path} -t oci -f {conf} -- --url oci:{layout}:bb"
            f" >/dev/null && exec lxc-execute -n {name} -P {path} -- /bin/sh -c '{SIGNAL}'"
        )
        try:
            return time_to_signal(["/bin/sh", "-c", script], fifo, env)
        finally:
            sh("lxc-destroy", "-n", name, "-P", path)

    floor_name, path = "floor", str(peer)
    sh("lxc-create", "-q", "-n", floor_name, "-P", path, "-t", "oci", "-f", str(conf),
       "--", "--url", f"oci:{layout}:bb", check=True)  # fmt: skip

    def lxc_execute_only() -> float:
        argv = ["lxc-execute", "-n", floor_name, "-P", path, "--", "/bin/sh", "-c", SIGNAL]
        return time_to_signal(argv, fifo, env)

    variants: dict[str, Callable[[], float]] = {}
    for label, cli in clis.items() if with_lxc else ():
        variants[f"lxcri run{label}"] = lxcri_run(cli)
        variants[f"lxcri run --network none{label}"] = lxcri_run(cli, "--network", "none")
    variants[PEER] = lxc_oci
    variants["lxc-execute only (floor)"] = lxc_execute_only
    with contextlib.ExitStack() as stack:
        if pve:
            from bench.run_pve import pve_variants

            variants.update(stack.enter_context(pve_variants(lx, img, clis, penv, pve)))
        times = _measure(variants, runs)
    sh("lxc-destroy", "-n", floor_name, "-P", path)
    _report(times, runs, mb)


def _measure(variants: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """``runs`` timings of each variant after one warm-up each (lxcri prepares the layer
    chain once), in an order reversed every other round."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()
    for i in range(runs):
        order = list(variants)
        if i % 2:
            order.reverse()
        for key in order:
            times[key].append(variants[key]())
    return times


def _report(times: dict[str, list[float]], runs: int, mb: int) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    peer_med = med[PEER]
    what = f"busybox-static + {mb} MB layer of {FILE_SIZE // 1024} KiB files" if mb else "busybox"
    print(f"\nimage: {what} (cached); time from command to running process")
    print(f"runs:  {runs} each, alternating order, after one warm-up; median")
    for key, vals in times.items():
        runs_txt = ", ".join(f"{t * 1000:.0f}" for t in vals)
        print(f"{key:40s} {med[key] * 1000:7.0f} ms   (runs: {runs_txt})")
    for key in med:
        if key.startswith("lxcri"):
            lxc_row = key.split(" [")[0] in ("lxcri run", "lxcri run --network none")
            goal = "  (goal <= 0.25)" if lxc_row else ""
            print(f"ratio {key + ' / lxc-oci:':44s} {med[key] / peer_med:6.2f} x{goal}")


if __name__ == "__main__":
    raise SystemExit(main())
