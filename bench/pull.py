"""Benchmark: ``lxcri pull`` against ``skopeo copy docker://… oci:…`` on loopback.

Run as ``.venv/bin/python -m bench.pull [--runs N] [--mb SIZE] [--layers N]``.
A docker-registry on 127.0.0.1 serves a ~150 MB, 5-layer image of
incompressible data; each tool pulls it into an empty destination, the two
alternating, and the medians are compared. Both verify every digest and
write an OCI layout, so the work is the same. Goal: lxcri <= 1.0 x skopeo.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import timed
from tests.support.images import Entry, Image, Layer, make_tar
from tests.support.registry import push_image, start_registry


def build_image(total_mb: int, layers: int) -> Image:
    per = total_mb * 1_000_000 // layers
    return Image(
        [
            Layer(make_tar([Entry(f"data{i}.bin", data=os.urandom(per))]), "none")
            for i in range(layers)
        ],
        {"Cmd": ["/bin/sh"]},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=150, help="image size in MB")
    ap.add_argument("--layers", type=int, default=5)
    args = ap.parse_args(argv)
    lxcri = str(Path(sys.executable).parent / "lxcri")
    with tempfile.TemporaryDirectory(prefix="lxcri-bench-") as tmp:
        work = Path(tmp)
        reg = start_registry(work / "registry")
        try:
            push_image(reg.addr, build_image(args.mb, args.layers), "bench/big:1", work)
            ref = f"{reg.addr}/bench/big:1"
            (work / "config.yaml").write_text("")
            env = {
                **os.environ,
                "LXCRI_CONFIG": str(work / "config.yaml"),
                "LXCRI_AUTH_FILE": str(work / "auth.json"),
                "HOME": str(work / "home"),
            }
            lx: list[float] = []
            sk: list[float] = []
            for i in range(args.runs):
                # Alternate which tool goes first so neither always gets a warm cache.
                order = ("lxcri", "skopeo") if i % 2 == 0 else ("skopeo", "lxcri")
                for tool in order:
                    dest = work / f"{tool}-{i}"
                    if tool == "lxcri":
                        lx.append(
                            timed(
                                [lxcri, "pull", "--insecure", ref],
                                {**env, "LXCRI_ROOT": str(dest)},
                            )
                        )
                    else:
                        sk.append(
                            timed(
                                [
                                    "skopeo",
                                    "copy",
                                    "--quiet",
                                    "--src-tls-verify=false",
                                    f"docker://{ref}",
                                    f"oci:{dest}:big",
                                ],
                                env,
                            )
                        )
                    subprocess.run(["rm", "-rf", str(dest)], check=True)
        finally:
            reg.stop()
    ml, ms = statistics.median(lx), statistics.median(sk)
    print(f"image: {args.mb} MB in {args.layers} layers, loopback docker-registry")
    print(f"runs:  {args.runs} each, alternating; median wall time")
    print(f"lxcri pull:          {ml:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in lx)})")
    print(f"skopeo copy oci:     {ms:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in sk)})")
    print(f"ratio lxcri/skopeo:  {ml / ms:6.2f} x  (goal <= 1.00)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
