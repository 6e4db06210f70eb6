"""ContainerSpec: the neutral container description and its renderers.

- ``model``: the frozen dataclasses (ContainerSpec, Mount, PortMapping, ...).
- ``options``: RunOptions and parsers of docker-style option strings.
- ``build``: ``build_spec(image_config, opts, rootfs)`` with docker's rules.
- ``users``: /etc/passwd and /etc/group parsing, ``--user`` resolution.
- ``lxc_config``: ``render_lxc_config`` (plain LXC) and the init shim contract.
- ``pve_config``: the pct.conf model (lossless parse/render) and ``render_pve_config``.
- ``etc_files``: /etc/resolv.conf, /etc/hosts, /etc/hostname as docker writes them.
"""
