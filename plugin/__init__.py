"""lxcri_pve: the Proxmox side of lxcri (platform backends, the CLI, hookscript)."""
