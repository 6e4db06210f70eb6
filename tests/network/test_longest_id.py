"""The longest id the one id rule allows (lxcri_core.ids) names real nftables chains."""

from __future__ import annotations

from lxcri_core.ids import MAX_ID
from lxcri_core.network import ports
from tests.network.portspec import one_port
from tests.support.netlab import Lab, free_port


def test_longest_id_publishes_lists_and_unpublishes(lab: Lab) -> None:
    cid = "f" * (MAX_ID - 4) + "-1.x"
    ct = lab.container(2)
    port = free_port()
    ports.publish(cid, [one_port(f"{port}:80")], ct.ipv4, ct.ipv6, table=lab.table)
    got = [p for p in ports.list_published(table=lab.table) if p.container_id == cid]
    assert {(p.mapping.host_port, p.mapping.container_port) for p in got} == {(port, 80)}
    assert {p.container_ip for p in got} == {ct.ipv4.ip, ct.ipv6.ip if ct.ipv6 else None}
    ports.unpublish(cid, table=lab.table)
    assert not [p for p in ports.list_published(table=lab.table) if p.container_id == cid]
