"""``make demo``: the main job end to end, narrated.

Builds the bundled demo image offline (busybox httpd), imports it, runs it
as a real LXC container with ``lxcri run -d -p 8080:80``, shows ``lxcri
list``, fetches the page from the host, and says how to stop and remove it.
Each step is the real ``lxcri`` command, exactly what an admin would type.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

LXCRI = str(Path(sys.executable).parent / "lxcri")
NAME = "lxcri-demo"
PORT = 8080


def step(*args: str, check: bool = True) -> str:
    print(f"\n$ lxcri {shlex.join(args)}", flush=True)
    proc = subprocess.run([LXCRI, *args], text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0 and check:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"demo failed at: lxcri {shlex.join(args)}")
    return proc.stdout


def fetch(url: str, tries: int = 50) -> str:
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo failed: {url} did not answer")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lxcri-demo-") as tmp:
        layout = Path(tmp) / "layout"
        digest = build_demo_layout(layout)
        print(f"built the demo image (busybox httpd) offline: {digest[:19]}")
        step("import", str(layout), "--name", DEMO_REF)
    step("inspect", DEMO_REF)
    # a demo container from an earlier run would hold the name and the port
    subprocess.run([LXCRI, "rm", "-f", NAME], capture_output=True)
    step("run", "-d", "--name", NAME, "-p", f"{PORT}:80", DEMO_REF)
    step("list")
    url = f"http://127.0.0.1:{PORT}/"
    print(f"\n$ curl {url}")
    print(fetch(url).strip())
    print(
        f"\nThe container runs under its supervisor. Stop and remove it with:\n"
        f"  {LXCRI} stop {NAME} && {LXCRI} rm {NAME}\n"
        f"and the image with: {LXCRI} rmi {DEMO_REF}"
    )


if __name__ == "__main__":
    main()
