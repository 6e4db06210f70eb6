"""Benchmark: ``lxcri unpack`` against ``umoci unpack`` and GNU ``tar -x`` of the same layers.

Run as ``.venv/bin/python -m bench.unpack [--runs N] [--rebuild]``.

The image is synthesised from this machine's /usr (no network needed) and
shaped like a distribution image: a large base layer of headers, perl and
zoneinfo, a second layer of Python and icons, and a third that deletes
files and whole directories (whiteouts), makes a directory opaque and
replaces files. It is at least 20,000 files and 150 MB; it is built once and
cached under /var/tmp. Every peer unpacks it into an empty directory; the
page cache is flushed (``sync``) before each timed run, peers alternate, and
medians are compared. Goals: lxcri <= 1.0 x umoci and <= 1.5 x tar.

To add a line (a storage backend, say), append a ``Peer`` to ``PEERS``:
its ``run(image, out)`` unpacks ``image`` into the fresh path ``out``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import timed

CACHE = Path("/var/tmp/lxcri-bench-unpack-v2")
TAG = "bench"
BASE_DIRS = ["usr/include", "usr/share/zoneinfo", "usr/share/perl", "usr/share/mime"]
SECOND_DIRS = ["usr/lib/python3.11", "usr/share/icons", "usr/share/vim"]
THIRD_DIRS = ["usr/share/i18n", "usr/share/X11"]


@dataclass(frozen=True)
class BenchImage:
    """The cached image: an lxcri state root whose ``images/`` is the OCI layout."""

    root: Path
    layers: tuple[tuple[Path, str], ...]  # (blob path, media type)
    files: int
    entries: int
    bytes: int

    @property
    def layout(self) -> Path:
        return self.root / "images"


@dataclass
class Peer:
    name: str
    run: Callable[[BenchImage, Path], None]
    times: list[float] = field(default_factory=list)


# -- building the image -----------------------------------------------------------


def _tar(cwd: Path, paths: list[str]) -> bytes:
    parents = sorted({str(Path(p).parent) for p in paths} | {"usr", "usr/share", "usr/lib"})
    parents = [p for p in parents if p != "." and (cwd / p).is_dir()]
    cmd = ["tar", "-C", str(cwd), "--format=pax", "--numeric-owner", "--sort=name", "-cf", "-"]
    cmd += ["--no-recursion", *parents, "--recursion", *paths]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def _third_layer(stage: Path) -> bytes:
    """Deletes and replaces: what an `apt-get purge` plus an upgrade leave behind."""
    usr = Path("/usr")
    stage.mkdir()
    whiteouts: list[Path] = []
    # Whole directories: the two largest icon themes' subtrees and the vim-like docs.
    icons = sorted(
        (p for p in (usr / "share/icons").iterdir() if p.is_dir()),
        key=lambda p: sum(1 for _ in p.rglob("*")),
        reverse=True,
    )[:1]
    whiteouts += icons
    linux = sorted((usr / "include/linux").glob("*.h"))
    whiteouts += linux[::7]  # every 7th kernel header
    for w in whiteouts:
        rel = w.relative_to("/")
        (stage / rel.parent).mkdir(parents=True, exist_ok=True)
        (stage / rel.parent / f".wh.{rel.name}").touch()
    # An opaque directory, repopulated.
    email = stage / "usr/lib/python3.11/email"
    email.mkdir(parents=True, exist_ok=True)
    (email / ".wh..wh..opq").touch()
    (email / "__init__.py").write_text("# replaced by the third layer\n")
    # Replaced files: new content for a few hundred headers.
    for h in sorted((usr / "include").glob("*.h"))[:300]:
        dst = stage / h.relative_to("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(h.read_bytes() + b"\n/* patched */\n")
    shutil.copytree(usr / "share/i18n", stage / "usr/share/i18n", symlinks=True)
    shutil.copytree(usr / "share/X11", stage / "usr/share/X11", symlinks=True)
    cmd = ["tar", "-C", str(stage), "--format=pax", "--numeric-owner", "--owner=0", "--group=0"]
    return subprocess.run(
        [*cmd, "--sort=name", "-cf", "-", "usr"], check=True, capture_output=True
    ).stdout


def _count(tar_bytes: bytes) -> tuple[int, int]:
    import io
    import tarfile

    files = entries = 0
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        for m in t:
            entries += 1
            files += m.isfile()
    return files, entries


def build_image(cache: Path = CACHE) -> BenchImage:
    meta = cache / "meta.json"
    if meta.exists():
        doc = json.loads(meta.read_text())
        return BenchImage(
            cache,
            tuple((cache / "images/blobs/sha256" / h, mt) for h, mt in doc["layers"]),
            doc["files"],
            doc["entries"],
            doc["bytes"],
        )
    print(f"building the benchmark image under {cache} (once) ...", file=sys.stderr)
    shutil.rmtree(cache, ignore_errors=True)
    blobs = cache / "images/blobs/sha256"
    blobs.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tars = [
            _tar(Path("/"), BASE_DIRS),
            _tar(Path("/"), SECOND_DIRS),
            _third_layer(Path(tmp) / "stage"),
        ]
    layers, diff_ids = [], []
    files = entries = size = 0
    for t in tars:
        f, e = _count(t)
        files, entries, size = files + f, entries + e, size + len(t)
        blob = gzip.compress(t, compresslevel=6, mtime=0)
        digest = hashlib.sha256(blob).hexdigest()
        (blobs / digest).write_bytes(blob)
        diff_ids.append("sha256:" + hashlib.sha256(t).hexdigest())
        layers.append((digest, "application/vnd.oci.image.layer.v1.tar+gzip", len(blob)))

    def put(doc: dict[str, object]) -> tuple[str, int]:
        data = json.dumps(doc, sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest, len(data)

    cfg_d, cfg_n = put(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    man_d, man_n = put(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg_d,
                "size": cfg_n,
            },
            "layers": [
                {"mediaType": mt, "digest": "sha256:" + d, "size": n} for d, mt, n in layers
            ],
        }
    )
    (cache / "images/oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_d,
                "size": man_n,
                "annotations": {"org.opencontainers.image.ref.name": TAG},
            }
        ],
    }
    (cache / "images/index.json").write_text(json.dumps(index))
    meta.write_text(
        json.dumps(
            {
                "layers": [(d, mt) for d, mt, _ in layers],
                "files": files,
                "entries": entries,
                "bytes": size,
            }
        )
    )
    return build_image(cache)


# -- the peers ------------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    timed(cmd, env)


def _lxcri_env(image: BenchImage) -> dict[str, str]:
    return {**os.environ, "LXCRI_ROOT": str(image.root), "LXCRI_CONFIG": "/dev/null"}


def run_lxcri(image: BenchImage, out: Path) -> None:
    _run([str(Path(sys.executable).parent / "lxcri"), "unpack", TAG, str(out)], _lxcri_env(image))


def run_lxcri_idmap(image: BenchImage, out: Path) -> None:
    exe = str(Path(sys.executable).parent / "lxcri")
    _run([exe, "unpack", "--unprivileged", TAG, str(out)], _lxcri_env(image))


def run_umoci(image: BenchImage, out: Path) -> None:
    _run(["umoci", "unpack", "--image", f"{image.layout}:{TAG}", str(out)])


def run_tar(image: BenchImage, out: Path) -> None:
    out.mkdir()
    for blob, _ in image.layers:
        _run(["tar", "-C", str(out), "--numeric-owner", "-xpzf", str(blob)])


PEERS: list[Peer] = [
    Peer("lxcri", run_lxcri),
    Peer("umoci", run_umoci),
    Peer("tar", run_tar),
    Peer("lxcri --unprivileged", run_lxcri_idmap),
]


def run_peers(image: BenchImage, peers: list[Peer], runs: int, work: Path) -> dict[str, float]:
    """Time every peer ``runs`` times (alternating order); return the medians."""
    for i in range(runs):
        order = peers if i % 2 == 0 else list(reversed(peers))
        for peer in order:
            out = work / f"out-{i}-{peer.name.replace(' ', '_')}"
            subprocess.run(["sync"], check=True)  # no writeback of the last run in this one
            start = time.perf_counter()
            peer.run(image, out)
            peer.times.append(time.perf_counter() - start)
            shutil.rmtree(out)
    return {p.name: statistics.median(p.times) for p in peers}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached image")
    ap.add_argument("--peers", default="", help="comma-separated subset of peers to run")
    ap.add_argument(
        "--dir",
        default="/var/tmp",
        help="where the peers unpack (e.g. /dev/shm to take the disk out of the figures)",
    )
    args = ap.parse_args(argv)
    if args.rebuild:
        shutil.rmtree(CACHE, ignore_errors=True)
    image = build_image()
    peers = [p for p in PEERS if not args.peers or p.name in args.peers.split(",")]
    print(
        f"image: {len(image.layers)} gzip layers, {image.files} files "
        f"({image.entries} entries), {image.bytes / 1e6:.0f} MB uncompressed"
    )
    with tempfile.TemporaryDirectory(prefix="lxcri-bench-unpack-", dir=args.dir) as tmp:
        medians = run_peers(image, peers, args.runs, Path(tmp))
    for name, t in medians.items():
        runs = " ".join(f"{x:.2f}" for x in next(p for p in peers if p.name == name).times)
        print(f"{name:22s} {t:7.2f} s   (runs: {runs})")
    if "lxcri" in medians:
        for peer, goal in (("umoci", 1.0), ("tar", 1.5)):
            if peer in medians:
                ratio = medians["lxcri"] / medians[peer]
                verdict = "ok" if ratio <= goal else "MISSED"
                print(f"lxcri / {peer:5s} = {ratio:.2f} x  (goal <= {goal} x: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
