"""``lxcri-runtime``: an OCI runtime with runc's command-line contract, on LXC.

``state`` holds the per-container state file and the status derived from it
(imported by every command, so it imports nothing heavy); ``bundle`` turns a
bundle's ``config.json`` into a ContainerSpec and the LXC keys the spec has
no field for (with ``mounts``, ``resources`` and ``fields``); ``ops`` runs
the lifecycle (create, start, kill, delete, exec, ps, pause, resume,
update); ``ocihooks`` runs the OCI hooks; ``containerd`` renders containerd's
drop-in.
"""
