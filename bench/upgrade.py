"""Benchmark: ``lxcri upgrade`` of a container to an image changing one of its 5 layers.

Run as ``.venv/bin/python -m bench.upgrade [--runs N] [--mb M] [--storage dir,overlay]``.

The image: busybox and four layers of ``--mb`` MB of files each (5 layers). Each
run makes a container from it, then a new version whose last layer alone
differs (fresh content each run, so nothing is cached), and times, alternating:

- ``lxcri upgrade CT --pull never``: the new rootfs from the store's layers
  (the four unchanged ones are prepared already), the swap, the old rootfs kept;
- ``lxcri create`` of another such version: a fresh container, the same one
  new layer to prepare (the goal: upgrade takes less than this);
- ``umoci unpack`` of the new version: what lxc-oci must do to move a container
  to a new image (a whole new rootfs; it shares nothing between images).

Besides time it prints what the upgrade added: layers unpacked (chain
entries new in the storage backend) and disk (``du`` of the backend's state,
before and after). Goals: one layer unpacked; upgrade < fresh create.
Medians of ``--runs`` runs; ratios against the fresh create and umoci. Python
runs with bytecode caches, as an installed lxcri does (see ``bench.run``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import timed
from bench.run import python_env
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar, write_layout
from tests.support.lxcenv import make_dir, new_env

REF = "localhost/bench-upgrade:latest"
FILE_SIZE = 256 * 1024


def _files_layer(tag: str, mb: int) -> Layer:
    files = [
        Entry(f"{tag}/f{i:04d}.bin", data=os.urandom(FILE_SIZE))
        for i in range(mb * 1024 * 1024 // FILE_SIZE)
    ]
    return Layer(make_tar([Entry(tag, "dir", mode=0o755), *files]), "none")


def version(base: list[Layer], mb: int) -> Image:
    """The shared four layers and a last one of its own."""
    img = busybox_image(Cmd=["exec sleep 3600"])
    img.layers = [*base, _files_layer("top", mb)]
    return img


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sxb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def chain_entries(root: Path, storage: str) -> set[str]:
    refs = json.loads((root / "storage" / storage / "refs.json").read_text())
    keys: set[str] = set()
    for chains in refs.get("images", {}).values():
        for chain in chains.values():
            keys.update(chain)
    for ct in refs.get("containers", {}).values():
        keys.update(ct["chain"] if isinstance(ct, dict) else ct[1])
    return keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=16, help="MB of files in each of 4 layers")
    ap.add_argument("--storage", default="dir,overlay")
    args = ap.parse_args()
    python_env(cached=True)  # bytecode caches, as an installed lxcri has (see bench.run)
    lxcri = str(Path(sys.executable).with_name("lxcri"))
    umoci = shutil.which("umoci")
    if umoci is None:
        sys.exit("bench: umoci is not installed (make deps)")
    first = busybox_image().layers[0]
    base = [first, *(_files_layer(f"l{i}", args.mb) for i in range(1, 4))]
    print(f"image: 5 layers, {3 * args.mb + args.mb} MB of files beside busybox; "
          f"the new version changes the last ({args.mb} MB)")  # fmt: skip
    for storage in args.storage.split(","):
        rows: dict[str, list[float]] = {"upgrade": [], "create": [], "umoci": []}
        layers_new: list[int] = []
        disk: list[int] = []
        for run in range(args.runs):
            env = new_env()
            penv = {**os.environ, **env.env, "LXCRI_STORAGE": storage}
            try:
                env.add_image(version(base, args.mb), REF)
                timed([lxcri, "create", "--name", "ct", "--storage", storage, REF], penv)
                env.add_image(version(base, args.mb), REF)
                other = version(base, args.mb)
                env.add_image(other, "localhost/bench-other:latest")
                layout = make_dir(env.root.parent)
                write_layout(layout / "oci", other, "t")
                subprocess.run(["sync"], check=True)
                order = ["upgrade", "create", "umoci"]
                for name in order if run % 2 == 0 else reversed(order):
                    if name == "upgrade":
                        before_keys = chain_entries(env.root, storage)
                        before_disk = du(env.root / "storage" / storage)
                        t = timed([lxcri, "upgrade", "ct", "--pull", "never"], penv)
                        layers_new.append(len(chain_entries(env.root, storage) - before_keys))
                        disk.append(du(env.root / "storage" / storage) - before_disk)
                    elif name == "create":
                        argv = [lxcri, "create", "--name", "fresh", "--storage", storage,
                                "localhost/bench-other:latest"]  # fmt: skip
                        t = timed(argv, penv)
                    else:
                        argv = [umoci, "unpack", "--image", f"{layout}/oci:t", f"{layout}/bundle"]
                        t = timed(argv, penv)
                    rows[name].append(t)
                shutil.rmtree(layout, ignore_errors=True)
            finally:
                env.close()
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"\n[{storage}] medians of {args.runs} runs")
        print(f"  lxcri upgrade (1 of 5 layers new)   {med['upgrade'] * 1000:8.0f} ms")
        print(f"  lxcri create (fresh, 1 layer new)   {med['create'] * 1000:8.0f} ms"
              f"   upgrade/create {med['upgrade'] / med['create']:.2f}x")  # fmt: skip
        print(f"  umoci unpack (lxc-oci's new rootfs) {med['umoci'] * 1000:8.0f} ms"
              f"   upgrade/umoci {med['upgrade'] / med['umoci']:.2f}x")  # fmt: skip
        print(f"  unpacked by the upgrade: {max(layers_new)} layer(s) (goal: 1); "
              f"disk added: {statistics.median(disk) / 1e6:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
