"""A private containerd for tests and benchmarks: its own root, state dir and socket.

There is no systemd: ``Containerd.start`` runs ``/usr/bin/containerd`` with a
config of its own under a fresh directory, waits for its socket, and
``stop`` ends it by its PID (then whatever shims it left, by theirs). ``ctr``
runs against that socket only. ``import_busybox`` builds the busybox test
image offline (tests.support.images) and imports it as an OCI archive.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.images import Image, busybox_image, write_layout

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
IMAGE_REF = "localhost/lxcri-runtime-test:latest"


@dataclass
class Containerd:
    base: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_config: str = ""
    namespace: str = "lxcri-test"
    log: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.base / "run" / "containerd.sock"

    def start(self) -> None:
        (self.base / "run").mkdir(parents=True, exist_ok=True)
        cfg = self.base / "config.toml"
        cfg.write_text(
            "version = 2\n"
            f'root = "{self.base}/root"\n'
            f'state = "{self.base}/state"\n'
            "[grpc]\n"
            f'  address = "{self.socket}"\n'
            "[ttrpc]\n"
            f'  address = "{self.socket}.ttrpc"\n'
            "[debug]\n"
            f'  address = "{self.base}/run/debug.sock"\n'
            "[metrics]\n"
            '  address = ""\n'
            "[plugins]\n"
            '  [plugins."io.containerd.grpc.v1.cri"]\n'
            "    disable_cgroup = true\n" + self.extra_config
        )
        logf = open(self.base / "containerd.log", "wb")  # noqa: SIM115 -- the daemon's
        self.proc = subprocess.Popen(
            [CONTAINERD, "--config", str(cfg)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.socket.exists() and self.ctr("version", check=False).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            "containerd did not start: " + (self.base / "containerd.log").read_text()[-2000:]
        )

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 120, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [CTR, "--address", str(self.socket), "--namespace", self.namespace, *args]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input.decode() if input is not None else None,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr}")
        return proc

    def shim_pids(self) -> list[int]:
        """The shims this containerd started (their command line names its socket)."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmd and str(self.socket).encode() in cmd:
                out.append(int(d))
        return out

    def stop(self) -> None:
        shims = self.shim_pids()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # what containerd mounted (task rootfs overlays) under its own directory
        with contextlib.suppress(OSError):
            for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
                target = line.split()[4]
                if target.startswith(str(self.base)):
                    subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def oci_archive(img: Image, ref: str) -> bytes:
    """The image as an OCI archive (a tar of an image layout) naming ``ref``."""
    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp) / "layout"
        write_layout(layout, img, tag=ref.rsplit(":", 1)[1])
        import json

        index = json.loads((layout / "index.json").read_text())
        for m in index["manifests"]:
            m.setdefault("annotations", {})["io.containerd.image.name"] = ref
            m["annotations"]["org.opencontainers.image.ref.name"] = ref.rsplit(":", 1)[1]
        (layout / "index.json").write_text(json.dumps(index))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for p in sorted(layout.rglob("*")):
                tar.add(p, arcname=str(p.relative_to(layout)), recursive=False)
        return buf.getvalue()


def import_busybox(cd: Containerd, ref: str = IMAGE_REF) -> str:
    data = oci_archive(busybox_image(Entrypoint=[], Cmd=["/bin/sh"], Env=["PATH=/bin"]), ref)
    path = cd.base / "image.tar"
    path.write_bytes(data)
    cd.ctr("image", "import", "--all-platforms", str(path))
    return ref


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
