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
- Containers run from lxcpath DIR/lxc (``lxc-info -P DIR/lxc -n VMID``); use
  ``pct status/exec/enter`` to stay independent of it.
- DIR/etc-pve/.vmlist and .members exist as pmxcfs makes them; .vmlist is
  refreshed on the simulator's own writes and on every listing, not the
  moment a backend writes a VMID.conf itself (pmxcfs would).

Faithful on purpose (from pve-container/pve-common): PVE's 400/403/401/501
replies and messages, UPIDs and task status/log, VMID.conf syntax with
[pve:pending] for changes to a running CT, the config lock, netN/mpN printing,
hookscript phases and errors, OCI create (entrypoint quoting, env, user,
cmode), ``ip=dhcp,host-managed=1`` leased by the host. Known differences: the
rootfs directory is the LXC rootfs (no mount hooks), a dir-storage disk is
always a subvol (size recorded, not enforced), hot-plugged values are written
but not applied live, LXC 5 gets lxc.environment for lxc.environment.runtime
and the entrypoint as argv, ``pct exec`` clears the environment unless
``--keep-env 1`` (PVE 8 kept it; PVE 9 planned to switch).

Modules: schema (validation against tests/data/pve/api-schema.json), pctconf
(VMID.conf), state (the tree, storage, lock, tasks), ct (CT operations),
lxcstart (pct.conf to LXC config, start/stop, the hookscript), oci (rootfs
from an OCI archive), routes (the API handlers), server (HTTPS), cli/pct/pvesh, tls,
hookrun (LXC post-stop hook), fixtures (pytest).
"""
