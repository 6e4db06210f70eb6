"""A throw-away lxcri root for tests and benchmarks that run real LXC containers.

Unprivileged containers are set up as host uid/gid 100000, which must pass
through the root to their state directory: lxcri makes the root itself 0710
root:100000 (``containers.private``), but its parents must be traversable, so
the root lives under ``/var/tmp/lxcri-tests/<random>`` (the base 0711: other
users can pass, not list) rather than under pytest's 0700 tmp_path. The root
starts 0700, as lxcri would leave any root it did not open yet. ``LxcEnv.close``
removes every container of the root and reports what the host still holds
for them: mounts under the root, nftables chains ``c-<id>-*`` and the veths
they had while running.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core.config import Config, load_config
from lxcri_core.media import Descriptor
from lxcri_core.store.layout import Store
from tests.support.images import Entry, Image, Layer, build, busybox_image, make_tar

BASE = Path("/var/tmp/lxcri-tests")

#: Prints its argv, cwd, ids and sorted environment, one item a line.
PROBE_SCRIPT = b"""#!/bin/sh
echo "argc=$#"
for a in "$0" "$@"; do echo "arg=[$a]"; done
echo "cwd=$(pwd)"
echo "uid=$(id -u):$(id -g)"
env | sort | sed 's/^/env=/'
"""

BUSYBOX_REF = "localhost/lxt-busybox:latest"
PROBE_REF = "localhost/lxt-probe:latest"
DEMO_REF = "localhost/lxcri-demo:latest"


def probe_image() -> Image:
    """busybox plus /probe.sh as ENTRYPOINT, running as ``www`` in /www with FOO=bar."""
    img = busybox_image(
        Entrypoint=["/probe.sh"],
        Cmd=["one", "two"],
        Env=["PATH=/bin", "FOO=bar"],
        WorkingDir="/www",
        User="www",
    )
    img.layers.append(Layer(make_tar([Entry("probe.sh", data=PROBE_SCRIPT, mode=0o755)])))
    return img


def sh(*argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)


def make_dir(base: Path = BASE, mode: int = 0o755) -> Path:
    """A fresh directory (``mode``) under ``base``; BASE itself others may pass through."""
    base.mkdir(parents=True, exist_ok=True)
    if base == BASE:
        os.chmod(base, 0o711)
    path = base / secrets.token_hex(6)
    path.mkdir(mode=mode)
    os.chmod(path, mode)
    return path


def wait_for(pred: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str = "/", timeout: float = 5) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return str(r.read().decode())


def mounts_under(path: Path) -> list[str]:
    from lxcri_core.fsutil import mounts  # decodes the kernel's \NNN escapes

    prefix = str(path.resolve())
    return [m[0] for m in mounts() if m[0] == prefix or m[0].startswith(prefix + "/")]


def nft_chains(container_id: str) -> list[str]:
    """Names of nftables chains that belong to ``container_id`` (``c-<id>-*``)."""
    proc = sh("nft", "-j", "list", "chains")
    if proc.returncode != 0:
        return []
    doc = json.loads(proc.stdout or "{}")
    names = [i["chain"]["name"] for i in doc.get("nftables", []) if "chain" in i]
    return [n for n in names if n.startswith(f"c-{container_id}-")]


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def veth_of(name: str, lxcpath: Path) -> str:
    """The host side of a running container's veth (``lxc-info`` ``Link:``), or ''."""
    out = sh("lxc-info", "-n", name, "-P", str(lxcpath)).stdout
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Link":
            return value.strip()
    return ""


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class LxcEnv:
    """One lxcri root with test images in its store; ``close`` tears it down."""

    root: Path
    images: dict[str, str] = field(default_factory=dict)  # ref -> manifest digest
    ids: dict[str, str] = field(default_factory=dict)  # container name -> id
    veths: set[str] = field(default_factory=set)

    @property
    def env(self) -> dict[str, str]:
        return {"LXCRI_ROOT": str(self.root)}

    def config(self) -> Config:
        return load_config(env={**os.environ, **self.env})

    @property
    def lxcpath(self) -> Path:
        return self.root / "containers"

    def add_image(self, img: Image, ref: str) -> str:
        """Put ``img`` into the store as ``ref`` (fast: no import pass); return its digest."""
        store = Store(self.config().image_store).init()
        built = build(img)
        for digest, data in built.blobs.items():
            store.put_bytes(data, digest)
        store.tag(ref, Descriptor(built.media_type, built.manifest_digest, built.manifest_size))
        self.images[ref] = built.manifest_digest
        return built.manifest_digest

    def add_demo(self) -> str:
        """Build the bundled demo image (busybox httpd on :80) and import it as DEMO_REF."""
        from lxcri_pve.demo_image import build_demo_layout

        from lxcri_core.images import import_image

        layout = self.root / "demo-layout"
        build_demo_layout(layout)
        rec = import_image(self.config(), layout, DEMO_REF)
        shutil.rmtree(layout)
        self.images[DEMO_REF] = rec.descriptor.digest
        return rec.descriptor.digest

    def start(self, name: str, image: str = BUSYBOX_REF, **opts: Any) -> int:
        """Create and start a detached container (``opts``: RunOptions fields); return
        the host pid of its init."""
        from lxcri_core.containers import engine
        from lxcri_core.spec.options import RunOptions

        cfg = self.config()
        engine.create(cfg, image, RunOptions(name=name, **opts))
        engine.start(cfg, name)
        self.remember(name)
        st = engine.status(cfg, name)
        assert st.status == "running" and st.pid, f"{name} is {st.status}, not running"
        return st.pid

    def remember(self, name: str) -> str:
        """Note a container (its id, its veth if running) for the leftover check."""
        from lxcri_core.containers.record import load_record

        rec = load_record(self.root, name)
        self.ids[name] = rec.id
        veth = veth_of(name, self.lxcpath)
        if veth:
            self.veths.add(veth)
        return rec.id

    def state_dir(self, name: str) -> Path:
        return self.lxcpath / name

    def leftovers(self) -> list[str]:
        """What the host still holds for this root's containers."""
        out = [f"mount {m}" for m in mounts_under(self.root)]
        for cid in self.ids.values():
            out += [f"nft chain {c}" for c in nft_chains(cid)]
        out += [f"veth {v}" for v in sorted(self.veths) if link_exists(v)]
        return out

    def remove_all(self) -> None:
        """Remove every container of this root, stopping what still runs."""
        from lxcri_core.containers import engine
        from lxcri_core.containers.record import list_records

        cfg = self.config()
        for rec in list_records(self.root):
            self.ids.setdefault(rec.name, rec.id)
            with contextlib.suppress(Exception):
                self.remember(rec.name)
            try:
                engine.remove(cfg, rec.name, force=True)
            except Exception:
                sh("lxc-stop", "-n", rec.name, "-P", str(self.lxcpath), "-k")
                pid = engine.supervisor_pid(self.state_dir(rec.name))
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    engine.remove(cfg, rec.name, force=True)

    def close(self) -> list[str]:
        """Remove everything; return the leftovers found before the last-resort sweep."""
        self.remove_all()
        # post-stop hooks run asynchronously to lxc-stop's return; give them a moment
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not self.leftovers(), timeout=5)
        found = self.leftovers()
        for m in sorted(mounts_under(self.root), key=len, reverse=True):
            sh("umount", "-l", m)
        shutil.rmtree(self.root, ignore_errors=True)
        return found


def new_env(base: Path = BASE) -> LxcEnv:
    return LxcEnv(make_dir(base, 0o700))
