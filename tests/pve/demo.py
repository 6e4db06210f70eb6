"""``make demo-pve``: the demo image as a Proxmox CT through pve-local, on the simulator.

Starts the Proxmox simulator (tests/pvesim: a fake /etc/pve, pct and pvesh,
real LXC), builds and imports the demo image into a throw-away lxcri root,
then through the pve-local backend: creates the CT with ``-p PORT:80`` (rootfs
on the ``local`` dir storage, VMID.conf written under PVE's lock), starts it
with ``pct start`` (lxcri's hookscript publishes the port), lists it, fetches
the page from the host, stops and destroys it. Everything is removed at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    from lxcri_pve.demo import fetch
    from lxcri_pve.demo_image import DEMO_REF, build_demo_layout

    from lxcri_core.backend import CreateRequest, CtRef, open_backend
    from lxcri_core.config import load_config
    from lxcri_core.images import import_image
    from lxcri_core.spec.options import RunOptions
    from tests.pvesim.fixtures import free_port, start_sim

    print("starting the Proxmox simulator ...", flush=True)
    sim = start_sim()
    try:
        empty = sim.dir / "lxcri-config.yaml"
        empty.write_text("")
        os.environ.update(
            PATH=f"{sim.bin}:{os.environ['PATH']}",
            PVESIM_DIR=str(sim.dir),
            LXCRI_CONFIG=str(empty),
            LXCRI_ROOT=str(sim.dir / "lxcri-root"),
            LXCRI_PVE_ROOT=str(sim.dir / "etc-pve"),
            LXCRI_PVE_NODE="pve1",
            LXCRI_PVE_LXCPATH=str(sim.dir / "lxc"),
            LXCRI_PVE_BRIDGE=sim.bridge,
        )
        cfg = load_config()
        with tempfile.TemporaryDirectory() as tmp:
            build_demo_layout(Path(tmp) / "layout")
            import_image(cfg, Path(tmp) / "layout", DEMO_REF)
        be = open_backend(cfg, "pve-local")
        port = free_port()
        opts = RunOptions(
            name="lxcri-demo",
            publish=(f"{port}:80",),
            ip=f"{sim.ip(10)}/24",
            gateway=sim.gateway,
        )
        ct = be.create(CreateRequest(image=DEMO_REF, options=opts, vmid=sim.vmid()))
        conf = sim.dir / "etc-pve" / "nodes" / "pve1" / "lxc" / f"{ct.vmid}.conf"
        print(f"\ncreated CT {ct.vmid}; {conf.name}:\n{conf.read_text()}")
        be.start(CtRef(ct.name))
        print(f"{'VMID':<8} {'Status':<10} {'Lock':<6} {'Name':<12} {'Image':<28} Ports")
        for s in be.list():
            ports = ", ".join(f"{p.host_port}->{p.container_port}/{p.protocol}" for p in s.ports)
            print(f"{s.vmid:<8} {s.status:<10} {s.lock:<6} {s.name:<12} {s.image:<28} {ports}")
        url = f"http://{sim.gateway}:{port}/"
        print(f"\nGET {url}\n{fetch(url)}")
        be.stop(CtRef(ct.name), timeout=1)
        be.remove(CtRef(ct.name))
        print(f"stopped and destroyed CT {ct.vmid}: config, rootfs and state are gone")
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
