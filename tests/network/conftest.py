from __future__ import annotations

from collections.abc import Iterator

import pytest

from lxcri_core.network import bridge
from tests.support.netlab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab bridge (own name, subnet, ULA and nft table), removed afterwards."""
    lab = Lab()
    try:
        bridge.ensure_bridge(lab.bridge, lab.subnet, lab.ipv6_subnet, table=lab.table)
        yield lab
    finally:
        lab.close()
