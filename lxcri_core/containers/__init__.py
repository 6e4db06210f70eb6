"""Containers on plain LXC: create, start, stop, supervise, remove.

``lxc_backend.LxcBackend`` is the API front ends use (through
``lxcri_core.backend.open_backend``); the work is split by job: ``create``
(the create transaction), ``netplan`` (bridge and address), ``lifecycle``
(start, stop, run in the foreground), ``remove``, ``listing`` (status, in
bulk), ``exec``; ``engine`` re-exports them for older callers. ``record`` is
the state kept per container (``$LXCRI_ROOT/containers/NAME/lxcri.json``, also
the marker that tells the hooks a container is lxcri's); ``lxc`` the thin
layer over the ``lxc-*`` tools; ``supervisor`` the per-container process that
applies restart policies and runs healthchecks.
"""
