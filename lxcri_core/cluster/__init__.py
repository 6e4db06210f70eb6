"""Cluster: lxcri images shared between the nodes of a (Proxmox) cluster.

- ``transport``: how a node is reached (this host, or ``ssh root@node``) and
  the pump that streams ``zfs send`` into ``zfs recv`` (zstd, rate limit);
- ``replicate``: give a node the zfs layer datasets of a chain it lacks, as
  incremental streams, received under a temporary name and checked first;
- ``nodes``: the cluster's nodes and addresses from /etc/pve;
- ``distribute``: ``lxcri image distribute``, a chain to a list of nodes.
"""
