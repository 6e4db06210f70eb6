"""``make demo``: the main job end to end, narrated.

Builds the bundled demo image offline, imports it into the store, inspects
it and unpacks its root filesystem, each step through the real ``lxcri``
command so what is shown is exactly what an admin would type.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

LXCRI = str(Path(sys.executable).parent / "lxcri")


def step(*args: str) -> str:
    print(f"\n$ lxcri {shlex.join(args)}", flush=True)
    proc = subprocess.run([LXCRI, *args], text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"demo failed at: lxcri {shlex.join(args)}")
    return proc.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lxcri-demo-") as tmp:
        layout = Path(tmp) / "layout"
        digest = build_demo_layout(layout)
        print(f"built the demo image (busybox httpd) offline: {layout} {digest[:19]}")
        step("import", str(layout), "--name", DEMO_REF)
        step("images")
        step("inspect", DEMO_REF)
        rootfs = Path(tmp) / "rootfs"
        step("unpack", DEMO_REF, str(rootfs))
        page = (rootfs / "www" / "index.html").read_text()
        print(f"\nthe unpacked rootfs serves: {page.strip()}")
    print("\ndemo done. Remove the image with: lxcri rmi " + DEMO_REF)


if __name__ == "__main__":
    main()
