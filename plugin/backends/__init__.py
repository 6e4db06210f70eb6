"""The Proxmox VE backends (pve-local, pve-api) of lxcri's Backend protocol."""
