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
"""

from __future__ import annotations

import argparse
import os
import select
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
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = start + timeout
        elapsed = None
        while elapsed is None and time.perf_counter() < deadline:
            for _fd, ev in poller.poll(20):
                if ev & select.POLLIN and os.read(fd, 64):
                    elapsed = time.perf_counter() - start
            if elapsed is None and proc.poll() is not None and proc.returncode != 0:
                break
        out, _ = proc.communicate(timeout=timeout)
        if elapsed is None or proc.returncode != 0:
            sys.exit(f"bench: {argv[0]} failed ({proc.returncode}): {out.decode().strip()}")
        return elapsed
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--mb", type=int, default=64, help="size of the larger image's extra layer")
    args = ap.parse_args(argv)
    lxcri = str(Path(sys.executable).parent / "lxcri")
    for mb in (0, args.mb):
        env = new_env()
        try:
            _bench(env, lxcri, args.runs, mb)
        finally:
            left = env.close()
            if left:
                print(f"warning: left behind: {left}", file=sys.stderr)
    return 0


def _bench(lx: LxcEnv, lxcri: str, runs: int, mb: int) -> None:
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
    env = {**os.environ, **lx.env, "LXCRI_CONFIG": "/dev/null"}
    base = [lxcri, "run", "--rm", "-v", f"{sig}:/sig"]

    def lxcri_default() -> float:
        return time_to_signal([*base, BUSYBOX_REF, SIGNAL], fifo, env)

    def lxcri_nonet() -> float:
        return time_to_signal([*base, "--network", "none", BUSYBOX_REF, SIGNAL], fifo, env)

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

    variants: dict[str, Callable[[], float]] = {
        "lxcri run": lxcri_default,
        "lxcri run --network none": lxcri_nonet,
        "lxc-create -t oci + lxc-execute": lxc_oci,
        "lxc-execute only (floor)": lxc_execute_only,
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm-up: lxcri prepares the layer chain once
        fn()
    for i in range(runs):
        order = list(variants)
        if i % 2:
            order.reverse()
        for key in order:
            times[key].append(variants[key]())

    sh("lxc-destroy", "-n", floor_name, "-P", path)
    med = {k: statistics.median(v) for k, v in times.items()}
    peer_med = med["lxc-create -t oci + lxc-execute"]
    what = f"busybox-static + {mb} MB layer of {FILE_SIZE // 1024} KiB files" if mb else "busybox"
    print(f"\nimage: {what} (cached); time from command to running process")
    print(f"runs:  {runs} each, alternating order, after one warm-up; median")
    for key, vals in times.items():
        runs_txt = ", ".join(f"{t * 1000:.0f}" for t in vals)
        print(f"{key:34s} {med[key] * 1000:7.0f} ms   (runs: {runs_txt})")
    for key in ("lxcri run", "lxcri run --network none"):
        print(f"ratio {key + ' / lxc-oci:':28s} {med[key] / peer_med:7.2f} x  (goal <= 0.25)")


if __name__ == "__main__":
    raise SystemExit(main())
