"""``python -m tests.pvesim --dir DIR --port PORT``: run the Proxmox simulator in the foreground.

Writes DIR/ca.pem (trust this), DIR/token (``USER@REALM!TOKENID=SECRET``, one
line, the format pve_token_file reads) and appends every request to
DIR/requests.jsonl. Point a client at https://127.0.0.1:PORT; point pct/pvesh
(tests/pvesim/bin) at the same state with PVESIM_DIR=DIR.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.pvesim.server import make_server
from tests.pvesim.state import Sim
from tests.pvesim.tls import make_certs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.pvesim", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, type=Path, help="state directory (created if missing)")
    ap.add_argument("--port", type=int, default=8006)
    ap.add_argument(
        "--first-vmid", type=int, default=100, help="datacenter.cfg next-id lower bound"
    )
    ap.add_argument("--zfs-pool", help="add 'zfspool: local-zfs' on this (zfs-fuse) pool")
    ap.add_argument(
        "--offline-node", action="append", default=[], help="list a node that is offline"
    )
    ap.add_argument(
        "--bridge",
        metavar="NAME:CIDR",
        help="create this Linux bridge with this host address (removed again on exit)",
    )
    args = ap.parse_args(argv)
    bridge = make_bridge(args.bridge) if args.bridge else None
    sim = Sim(args.dir)
    fresh = not (sim.etc_pve / "user.cfg").exists()
    sim.init(first_vmid=args.first_vmid, zfs_pool=args.zfs_pool)
    token_file = sim.root / "token"
    if fresh or not token_file.exists():
        token_file.write_text(sim.add_token("root@pam", "pvesim") + "\n")
        os.chmod(token_file, 0o600)
    if args.offline_node:
        (sim.root / "offline-nodes").write_text("\n".join(args.offline_node) + "\n")
    ca, cert, key = make_certs(sim.root)
    httpd = make_server(sim, args.port, cert, key)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(
        f"pvesim: https://127.0.0.1:{httpd.server_address[1]}/api2/json"
        f"  CA {ca}  token {token_file}",
        flush=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        if bridge:
            subprocess.run(["ip", "link", "del", bridge], check=False)
    return 0


def make_bridge(spec: str) -> str | None:
    """Create bridge NAME with address CIDR; None when it existed already (left alone)."""
    name, _, cidr = spec.partition(":")
    if not name or not cidr:
        raise SystemExit("--bridge wants NAME:CIDR, e.g. vmbr0:10.99.0.1/24")
    if Path(f"/sys/class/net/{name}").exists():
        return None
    for cmd in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "addr", "add", cidr, "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            raise SystemExit(f"cannot create bridge {name}: {res.stderr.strip()}")
    return name


if __name__ == "__main__":
    sys.exit(main())
