"""Benchmark: lxcri-runtime's start-up costs against runc's (and crun's) and the interpreter.

Run as ``.venv/bin/python -m bench.runtime [--runs N]``. Every operation is
a process start (containerd's shim runs one per call), so:

- ``state`` of a created container, for each runtime, and the floor
  ``/usr/bin/python3 -c pass`` (and the runtime's own interpreter). Goal
  (issue 12): lxcri-runtime's ``state`` within 2x the floor.
- ``create`` + ``start`` + the process's exit (``true``) + ``delete`` of the
  same bundle (a busybox rootfs, the config ``runc spec``/containerd give).

Runs are interleaved (one of each per round) so that the other engineers'
load on this shared machine hits every row alike; medians are printed with
the ratios. lxcri's modules are byte-compiled first, as an installed package has
them (this environment sets PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.support.ocibundle import base_config, make_bundle

REPO = Path(__file__).resolve().parent.parent
LXCRI_RUNTIME = str(REPO / ".venv" / "bin" / "lxcri-runtime")


def _compile() -> None:
    """Byte-compile lxcri's packages where the import system looks (the editable
    install's link tree), as an installed package has them."""
    import compileall

    for name in ("lxcri_core", "lxcri_pve"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def _subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the containers' processes come here


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _run(argv: list[str], env: dict[str, str]) -> None:
    # files, not pipes: a created container keeps the runtime's stdio open
    import tempfile

    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, stdout=null, stderr=err, stdin=null, env=env)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"bench: {' '.join(argv)} failed: {err.read().decode().strip()}")


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Runtime:
    def __init__(self, name: str, binary: str, root: Path, env: dict[str, str]) -> None:
        self.name, self.binary, self.root, self.env = name, binary, root, env

    def __call__(self, *args: str) -> None:
        _run([self.binary, "--root", str(self.root), *args], self.env)

    def wait_gone(self, cid: str) -> None:
        """Until ``state`` says stopped (the process ran ``true`` and exited)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(
                [self.binary, "--root", str(self.root), "state", cid],
                capture_output=True,
                text=True,
                env=self.env,
            ).stdout
            if '"stopped"' in out:
                return
            _reap()
            time.sleep(0.002)
        sys.exit(f"bench: {self.name} container {cid} did not stop")

    def cycle(self, bundle: Path, cid: str) -> None:
        self("create", "--bundle", str(bundle), cid)
        self("start", cid)
        self.wait_gone(cid)
        self("delete", cid)
        _reap()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=31, help="rounds of state (cycles: a third)")
    args = ap.parse_args(argv)
    _compile()
    _subreaper()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = Path("/var/tmp/lxcri-tests") / f"bench-runtime-{secrets.token_hex(4)}"
    base.mkdir(parents=True, mode=0o711)
    runtimes = [Runtime("lxcri-runtime", LXCRI_RUNTIME, base / "lxcri", env)]
    for peer in ("runc", "crun"):
        path = shutil.which(peer)
        if path:
            runtimes.append(Runtime(peer, path, base / peer, env))
        else:
            print(f"({peer} is not installed: no {peer} row)")
    try:
        bundle = make_bundle(base / "bundle", base_config(["sleep", "1000"]))
        quick = make_bundle(base / "quick", base_config(["true"]))
        for rt in runtimes:
            rt("create", "--bundle", str(bundle), "bench-state")
        rows: dict[str, list[float]] = {"python3 -c pass (floor)": []}
        rows[f"{Path(sys.executable).name} -c pass (venv)"] = []
        for rt in runtimes:
            rows[f"{rt.name} state"] = []
        for _ in range(args.runs):
            rows["python3 -c pass (floor)"].append(
                _timed(lambda: _run(["/usr/bin/python3", "-c", "pass"], env))
            )
            rows[f"{Path(sys.executable).name} -c pass (venv)"].append(
                _timed(lambda: _run([sys.executable, "-c", "pass"], env))
            )
            for rt in runtimes:
                rows[f"{rt.name} state"].append(_timed(partial(rt, "state", "bench-state")))
        cycles: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
        for i in range(max(3, args.runs // 3)):
            for rt in runtimes:
                cycles[rt.name].append(_timed(partial(rt.cycle, quick, f"bench-{i}")))
        for rt in runtimes:
            rt("delete", "--force", "bench-state")
    finally:
        for rt in runtimes:
            subprocess.run(
                [rt.binary, "--root", str(rt.root), "delete", "--force", "bench-state"],
                capture_output=True,
            )
        _reap()
        shutil.rmtree(base, ignore_errors=True)
    floor = statistics.median(rows["python3 -c pass (floor)"])
    print(f"median of {args.runs} runs (ms); ratio to the floor /usr/bin/python3 -c pass")
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"  {name:32} {med * 1000:8.1f} ms   {med / floor:5.2f}x floor")
    ours = statistics.median(rows["lxcri-runtime state"])
    for rt in runtimes[1:]:
        theirs = statistics.median(rows[f"{rt.name} state"])
        print(f"  lxcri-runtime state / {rt.name} state: {ours / theirs:.2f}x")
    goal = "met" if ours <= 2 * floor else "NOT met"
    print(f"  goal state <= 2x floor: {goal} ({ours / floor:.2f}x)")
    n = len(cycles[runtimes[0].name])
    print(f"create + start + exit + delete, median of {n} (ms)")
    ours_c = statistics.median(cycles["lxcri-runtime"])
    for rt in runtimes:
        med = statistics.median(cycles[rt.name])
        print(f"  {rt.name:32} {med * 1000:8.1f} ms   {med / ours_c:5.2f}x lxcri-runtime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
