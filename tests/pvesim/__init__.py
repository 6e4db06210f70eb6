"""A Proxmox VE 9.1 simulator that runs real LXC containers (tests, and by hand).

Run it: ``make pve-sim PVESIM_DIR=DIR PVESIM_PORT=PORT`` or ``python -m
tests.pvesim --dir DIR --port PORT [--first-vmid N] [--zfs-pool POOL]
[--offline-node NAME]``. It writes DIR/ca.pem, DIR/token (one line
``root@pam!pvesim=SECRET``) and appends each request to DIR/requests.jsonl.

Point a backend at it:
- pve-api: LXCRI_PVE_URL=https://127.0.0.1:PORT LXCRI_PVE_TOKEN_FILE=DIR/token
  LXCRI_PVE_CA=DIR/ca.pem LXCRI_PVE_NODE=pve1 (the node's name is ``pve1``;
  the root@pam password, for ticket auth, is in DIR/etc-pve/priv/shadow.cfg).
- pve-local: PATH=tests/pvesim/bin:$PATH (fake ``pct`` and ``pvesh``),
  PVESIM_DIR=DIR (where they find the state) and LXCRI_PVE_ROOT=DIR/etc-pve
  (the backend's /etc/pve: lxc/VMID.conf is nodes/pve1/lxc/VMID.conf,
  storage.cfg holds ``dir: local`` at DIR/storage/local with snippets in
  DIR/storage/local/snippets). Write a config under PVE's lock: flock on
  /run/lock/lxc/pve-config-VMID.lock (PVESIM_LOCK_DIR moves it), which
  pct, pvesh and the API also take.
- Containers run from lxcpath DIR/lxc (``lxc-info -P DIR/lxc -n VMID``).

Modules: schema (validation against tests/data/pve/api-schema.json), pctconf
(VMID.conf), state (the tree, storage, lock, tasks), ct (CT operations),
lxcstart (pct.conf to LXC config, start/stop, the hookscript), oci (rootfs
from an OCI archive), server (HTTPS API), cli/pct/pvesh (the CLIs), tls,
hookrun (LXC post-stop hook), fixtures (pytest).
"""
