"""The Proxmox VE backends of the ``Backend`` protocol (``lxcri_core.backend``).

``pve_local``: on a PVE host, as root (pct, pvesh and /etc/pve); its helpers
are ``pve_storage`` (storage.cfg and the CT's rootfs volume), ``pve_lock``
(PVE's config lock), ``pve_state`` (lxcri's per-VMID record) and
``pve_hookscript`` (the guest hookscript lxcri installs into a snippets storage).
"""
