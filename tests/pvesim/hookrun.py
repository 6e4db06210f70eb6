"""LXC post-stop hook of simulator CTs: runs the CT's hookscript ``SCRIPT VMID post-stop``.

LXC calls ``hookrun.py DIR VMID lxc post-stop`` (hook version 0 appends the
name, section and hook type) on the host, with LXC_TARGET in the environment
like pve-container's lxc-pve-poststop-hook, whose job this is. The script's
output is appended to DIR/lxc/VMID/hookscript.log, which a stop task copies
into its task log. A failing hookscript is reported, never fatal: the CT is
already stopped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str]) -> int:
    from tests.pvesim import lxcstart
    from tests.pvesim.state import PveError, Sim

    if len(argv) < 2 or not argv[1].isdigit():
        return 0
    sim = Sim(Path(argv[0]))
    vmid = int(argv[1])
    out = sim.lxcpath / str(vmid) / "hookscript.log"
    try:
        conf = sim.load(vmid)
        volid = conf.main.get("hookscript")
        if not volid:
            return 0
        script = lxcstart.hookscript_path(sim, volid)
        res = subprocess.run(
            [str(script), str(vmid), "post-stop"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=300,
        )
        text = res.stdout
        if res.returncode != 0:
            text += (
                f"hookscript error for {vmid} on post-stop: command '{script} {vmid} post-stop'"
                f" failed: exit code {res.returncode}\n"
            )
    except (PveError, OSError) as e:
        text = f"hookscript error for {vmid} on post-stop: {e}\n"
    with open(out, "a") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
