"""Pytest fixtures: a running Proxmox simulator with a fresh state dir and its own bridge.

``pvesim`` yields a PveSim: the HTTPS API on a free port of 127.0.0.1 (its CA
in ``ca``, a root@pam API token in ``token``), the state dir (PVESIM_DIR, a
world-traversable dir under /var/tmp/lxcri-tests so unprivileged CTs reach
their rootfs), a Linux bridge ``bridge`` with ``gateway`` on a free /24 for
the CTs' net0, and ``bin`` to prepend to PATH for the fake pct/pvesh. VMIDs
start at a random base so parallel runs never share a veth name or a lock
file. On teardown every CT is stopped and destroyed, the server and the bridge
removed, and the state dir deleted.

Use from a conftest or test module: ``from tests.pvesim.fixtures import pvesim``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.images import Image, write_layout
from tests.support.lxcenv import make_dir
from tests.support.netlab import used_v4_networks

REPO = Path(__file__).resolve().parents[2]
BIN = Path(__file__).resolve().parent / "bin"
NODE = "pve1"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_subnet() -> ipaddress.IPv4Network:
    used = used_v4_networks()
    choices = list(range(1, 255))
    random.shuffle(choices)
    for n in choices:
        net = ipaddress.IPv4Network(f"10.211.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.211.N.0/24 left")


def oci_archive(path: Path, img: Image, tag: str = "latest") -> Path:
    """An OCI image layout tarred the way PVE 9.1 accepts it (plain names at the root)."""
    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp) / "layout"
        write_layout(layout, img, tag)
        with tarfile.open(path, "w") as tf:
            for p in sorted(layout.rglob("*")):
                tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    return path


@dataclass
class PveSim:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    bridge: str
    subnet: ipaddress.IPv4Network
    first_vmid: int
    token: str = ""
    started: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def bin(self) -> Path:
        return BIN

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def ip(self, host: int) -> str:
        return str(self.subnet.network_address + host)

    def net0(self, host: int) -> str:
        return f"name=eth0,bridge={self.bridge},ip={self.ip(host)}/24,gw={self.gateway}"

    @property
    def env(self) -> dict[str, str]:
        """For the fake pct/pvesh and for backends under test."""
        return {
            **os.environ,
            "PVESIM_DIR": str(self.dir),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "LXCRI_PVE_ROOT": str(self.dir / "etc-pve"),
            "LXCRI_PVE_URL": self.url,
            "LXCRI_PVE_TOKEN_FILE": str(self.dir / "token"),
            "LXCRI_PVE_CA": str(self.ca),
            "LXCRI_PVE_NODE": NODE,
        }

    def lxcri_env(self, root: Path, backend: str = "pve-local") -> dict[str, str]:
        """The environment that points an ``lxcri`` process at this simulator, either
        backend, with its own root and an empty config file under ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.yaml").write_text("")
        return {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PVESIM_DIR": str(self.dir),
            "LXCRI_CONFIG": str(root / "config.yaml"),
            "LXCRI_ROOT": str(root / "root"),
            "LXCRI_BACKEND": backend,
            "LXCRI_PVE_ROOT": str(self.dir / "etc-pve"),
            "LXCRI_PVE_NODE": NODE,
            "LXCRI_PVE_LXCPATH": str(self.dir / "lxc"),
            "LXCRI_PVE_BRIDGE": self.bridge,
            "LXCRI_PVE_URL": self.url,
            "LXCRI_PVE_TOKEN_FILE": str(self.dir / "token"),
            "LXCRI_PVE_CA": str(self.ca),
        }

    def api(self, **kw: Any) -> Any:
        from proxmoxer import ProxmoxAPI

        user, rest = self.token.split("!", 1)
        name, secret = rest.split("=", 1)
        return ProxmoxAPI(
            "127.0.0.1",
            port=self.port,
            user=user,
            token_name=name,
            token_value=secret,
            verify_ssl=str(self.ca),
            **kw,
        )

    def root_password(self) -> str:
        line = (self.dir / "etc-pve" / "priv" / "shadow.cfg").read_text().splitlines()[0]
        return line.rsplit(":", 1)[1]

    def pct(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pct"), *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )

    def pvesh(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pvesh"), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def add_template(self, name: str, img: Image) -> str:
        oci_archive(self.dir / "storage" / "local" / "template" / "cache" / name, img)
        return f"local:vztmpl/{name}"

    def add_snippet(self, name: str, text: str) -> str:
        p = self.dir / "storage" / "local" / "snippets" / name
        p.write_text(text)
        p.chmod(0o755)
        return f"local:snippets/{name}"

    def requests(self) -> list[dict[str, Any]]:
        p = self.dir / "requests.jsonl"
        return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []

    def vmid(self) -> int:
        vmid = self.first_vmid + len(self.started)
        self.started.append(vmid)
        return vmid

    def wait_task(self, upid: str, timeout: float = 120) -> dict[str, Any]:
        api = self.api()
        deadline = time.monotonic() + timeout
        while True:
            st: dict[str, Any] = api.nodes(NODE).tasks(upid).status.get()
            if st["status"] == "stopped":
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"task {upid} still running after {timeout} s")
            time.sleep(0.1)

    def task_log(self, upid: str) -> list[str]:
        return [e["t"] for e in self.api().nodes(NODE).tasks(upid).log.get(limit=0)]

    def lxc_state(self, vmid: int) -> str:
        out = subprocess.run(
            ["lxc-info", "-P", str(self.dir / "lxc"), "-n", str(vmid), "-s"],
            capture_output=True,
            text=True,
        ).stdout
        return out.split(":", 1)[1].strip() if ":" in out else "NONE"

    def close(self) -> None:
        lxcpath = self.dir / "lxc"
        for d in lxcpath.iterdir() if lxcpath.exists() else []:
            subprocess.run(
                ["lxc-stop", "-P", str(lxcpath), "-n", d.name, "-k"], capture_output=True
            )
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for vmid in range(self.first_vmid, self.first_vmid + 50):
            with contextlib.suppress(OSError):
                (Path("/run/lock/lxc") / f"pve-config-{vmid}.lock").unlink()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_sim(env: dict[str, str] | None = None, zfs_pool: str | None = None) -> PveSim:
    """A running simulator; ``env`` adds to its environment (PVESIM_INSECURE_REGISTRIES),
    ``zfs_pool`` (a zfs-fuse pool or dataset) becomes the ``zfspool: local-zfs`` storage."""
    d = make_dir()
    port = free_port()
    first = random.randrange(10000, 99000, 100)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.pvesim",
            "--dir",
            str(d),
            "--port",
            str(port),
            "--first-vmid",
            str(first),
            "--offline-node",
            "pve2",
            *(["--zfs-pool", zfs_pool] if zfs_pool else []),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    bridge = "pvs" + secrets.token_hex(4)
    subnet = free_subnet()
    sim = PveSim(d, port, proc, bridge, subnet, first)
    try:
        subprocess.run(
            ["ip", "link", "add", bridge, "type", "bridge"], check=True, capture_output=True
        )
        subprocess.run(
            ["ip", "addr", "add", f"{sim.gateway}/24", "dev", bridge],
            check=True,
            capture_output=True,
        )
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"simulator exited: {err}")
            tok = d / "token"
            if tok.exists() and (d / "ca.pem").exists():
                try:
                    requests.get(f"{sim.url}/api2/json/version", verify=str(sim.ca), timeout=2)
                    sim.token = tok.read_text().strip()
                    break
                except requests.RequestException:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("simulator did not come up")
            time.sleep(0.1)
    except BaseException:
        sim.close()
        raise
    return sim


@pytest.fixture
def pvesim() -> Iterator[PveSim]:
    sim = start_sim()
    try:
        yield sim
    finally:
        sim.close()
