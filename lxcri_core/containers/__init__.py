"""Containers on plain LXC: create, start, stop, supervise, remove.

``engine`` is the API the CLI calls; ``record`` the state kept per container
(``$LXCRI_ROOT/containers/NAME/lxcri.json``, also the marker that tells the
hooks a container is lxcri's); ``lxc`` the thin layer over the ``lxc-*``
tools; ``supervisor`` the per-container process that applies restart
policies and runs healthchecks.
"""
