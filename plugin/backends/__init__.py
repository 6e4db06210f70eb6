"""The Proxmox VE backends of the ``Backend`` protocol (``lxcri_core.backend``).

``pve_local``: on a PVE host, as root (pct, pvesh and /etc/pve); its helpers
are ``pve_storage`` (storage.cfg and the CT's rootfs volume), ``pve_lock``
(PVE's config lock), ``pve_state`` (lxcri's per-VMID record),
``pve_hookscript`` (the guest hookscript lxcri installs into a snippets
storage) and ``pve_supervise`` (restart policy and healthcheck).
``pve_api``: any PVE node through its HTTPS API with a token; its helpers are
``pve_api_client`` (credentials, errors, tasks), ``pve_api_create`` (create
parameters and what a token may not set) and ``pve_api_upload`` (the
streamed template upload).
"""
