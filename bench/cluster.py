"""Benchmark: what a second node costs, lxcri replication vs a pull on that node.

Run as ``.venv/bin/python -m bench.cluster`` (root, a running zfs-fuse daemon).

Two "nodes" are two file-backed zfs-fuse pools. Node A prepares the
benchmark image of bench.unpack (built once from this machine's /usr, three
layers, >= 20,000 files, >= 150 MB) with the zfs backend; node B then gets
its layer chain by ``lxcri_core.cluster`` replication (zstd on the wire). A
pull on B instead would download the compressed blobs and unpack them again:
that is the baseline (bytes = the image's compressed size, time = A's unpack).
The transport here is the local one (``LocalNode``): ssh adds its cipher's
framing to the same bytes. Goal: B receives no more than the compressed image
size, once (a second replication sends nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.unpack import build_image


def _pool(name: str, d: Path, size: int) -> str:
    vdev = d / f"{name}.img"
    with open(vdev, "wb") as f:
        f.truncate(size)
    subprocess.run(["zpool", "create", "-m", str(d / name), name, str(vdev)], check=True)
    return name


def _destroy(pool: str) -> None:
    for i in range(20):
        if subprocess.run(["zpool", "destroy", "-f", pool], capture_output=True).returncode == 0:
            return
        time.sleep(0.2 * (i + 1))
    print(f"bench: could not destroy pool {pool}; `zpool destroy -f {pool}`", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bwlimit", type=int, default=None, help="bytes/s per stream")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)

    from lxcri_core.cluster.replicate import Side, replicate_chain
    from lxcri_core.cluster.transport import LocalNode
    from lxcri_core.config import load_config
    from lxcri_core.storage import open_backend
    from lxcri_core.store.layout import Store

    if subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
        sys.exit("bench: zfs-fuse is not running; start it (zfs-fuse) and run again")
    image = build_image()
    index = json.loads((image.layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    compressed = sum(p.stat().st_size for p, _ in image.layers)
    store = Store(image.layout)
    tag = f"lxcribench{os.getpid()}"
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        d = Path(tmp)
        pools = [_pool(f"{tag}a", d, 4 << 30), _pool(f"{tag}b", d, 4 << 30)]
        try:
            cfg = load_config().with_overrides(root=d / "root", zfs_pool=pools[0])
            start = time.perf_counter()
            chain = open_backend(cfg, "zfs").prepare_image(store, digest)
            unpack_s = time.perf_counter() - start
            a, b = Side(LocalNode("a"), pools[0]), Side(LocalNode("b"), pools[1])
            start = time.perf_counter()
            first = replicate_chain(chain, a, b, bwlimit=args.bwlimit)
            first_s = time.perf_counter() - start
            again = replicate_chain(chain, a, b)
        finally:
            for p in pools:
                _destroy(p)
    result = {
        "image_compressed_bytes": compressed,
        "image_uncompressed_bytes": image.bytes,
        "layers": len(chain.layers),
        "pull_baseline_unpack_seconds": round(unpack_s, 2),
        "replication_wire_bytes": first.wire_bytes,
        "replication_stream_bytes": first.stream_bytes,
        "replication_seconds": round(first_s, 2),
        "second_replication_wire_bytes": again.wire_bytes,
        "goal_met": first.complete and first.wire_bytes <= compressed and again.wire_bytes == 0,
    }
    if args.output == "json":
        print(json.dumps(result, indent=1))
    else:
        mib = 1 << 20
        print(
            f"image: {len(chain.layers)} layers, {compressed / mib:.1f} MiB compressed, "
            f"{image.bytes / mib:.1f} MiB of tar"
        )
        print(
            f"  pull on node B: {compressed / mib:.1f} MiB from the registry, "
            f"then unpack ({unpack_s:.1f} s on node A)"
        )
        print(
            f"  lxcri replication: {first.wire_bytes / mib:.1f} MiB on the wire "
            f"({first.stream_bytes / mib:.1f} MiB zfs stream), {first_s:.1f} s"
        )
        print(f"  second replication: {again.wire_bytes} bytes")
        print(
            "goal (<= compressed size once, then nothing):",
            "met" if result["goal_met"] else "NOT met",
        )
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
