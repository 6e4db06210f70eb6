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
    args = ap.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
