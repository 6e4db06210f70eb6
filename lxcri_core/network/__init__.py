"""Container networking on plain LXC: bridge, addresses, published ports.

What the start/stop hooks and the lxc backend call (import the submodule you
need; nothing heavy is imported here or at module import time)::

    from lxcri_core.network import bridge, ipam, ports

    # start, --network bridge (default) on plain LXC
    br = bridge.ensure_bridge()                       # lxcri0, 10.88.0.0/16, NAT; idempotent
    lease = ipam.Ipam.from_config(cfg, br.name, br.subnet, br.ipv6_subnet) \\
        .allocate_lease(ctid)                         # stable across restarts
    #   lxc.net.0.link = br.name, ipv4.address = lease.ipv4, ipv4.gateway = br.gateway.ip
    ports.publish(ctid, spec.ports,                   # spec.model.PortMapping, host ports chosen
                  lease.ipv4, lease.ipv6)              # one nft call, replaces old rules

    # on Proxmox (vmbr0 is the admin's: no ensure_bridge, addresses from the CT config)
    bridge.enable_route_localnet("vmbr0")             # 127.0.0.1:PORT works there too (guarded)
    ports.publish(ctid, mappings, ct_ipv4, ct_ipv6)

    # stop / post-stop (also after init was killed): by id alone, idempotent
    ports.unpublish(ctid)
    # destroy
    ipam.Ipam.from_config(cfg, br.name, br.subnet).release(ctid)

    # read-only, for `lxcri list` and the dashboard
    inspect.read_bridges(); ports.list_published()

Modules: ``bridge`` (ensure_bridge, remove_bridge, enable_route_localnet),
``localnet`` (the guard that keeps containers off the host's 127.0.0.1),
``listeners`` (host sockets from /proc/net: ports ``-p`` must not take),
``ipam`` (Ipam, Lease, allocate, release), ``ports`` (publish, unpublish,
list_published and the pure ruleset builders/parser of
``spec.model.PortMapping``, parsed by ``spec.options.parse_port``),
``inspect`` (read_bridges, parse_bridges), ``options``
(parse_network for ``--network none|bridge|bridge=NAME``), ``command``
(the Runner used for nft and ip), ``ovs`` (Open vSwitch bridges, ports, tags,
trunks: one ``ovs-vsctl`` read, checked argv builders), ``veth`` (Proxmox's
``vethVMIDiN`` names, links with their peer ifindex), ``ctnet`` (the
containers' addresses and routes, read in their netns by ``nsdump``, one
process for all), ``netreport``
(``lxcri inspect-network``: everything above joined, veth owners by peer
ifindex), ``netup`` (the ``lxc.net.0.script.up`` hook: OVS tag/trunks, rate
limit, checksum offload on OVS). Every failure is a ``NetworkError``.
"""
