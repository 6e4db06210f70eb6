from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lxcri_core.network import bridge
from tests.support import ovslab
from tests.support.netlab import Lab
from tests.support.ovslab import OvsLab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab bridge (own name, subnet, ULA and nft table), removed afterwards."""
    lab = Lab()
    try:
        bridge.ensure_bridge(lab.bridge, lab.subnet, lab.ipv6_subnet, table=lab.table)
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def ovs() -> Iterator[OvsLab]:
    """A private userspace Open vSwitch for the session; OVS_RUNDIR points ovs-vsctl at it.

    Holds /var/tmp/lxcri-tests/ovs.lock while it runs (one userspace vswitchd per host):
    the trixie run's copy of the suite waits for it, and this one for theirs.
    """
    why = ovslab.available()
    if why:
        pytest.skip(why)
    lab = OvsLab.start()
    saved = os.environ.get("OVS_RUNDIR")
    os.environ["OVS_RUNDIR"] = lab.env["OVS_RUNDIR"]
    try:
        yield lab
    finally:
        if saved is None:
            os.environ.pop("OVS_RUNDIR", None)
        else:
            os.environ["OVS_RUNDIR"] = saved
        lab.stop()
