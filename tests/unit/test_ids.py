"""One container-id rule (lxcri_core.ids) for names, storage ids, port chains and leases.

Before: names took at most 63 characters, storage ids 64 and port-chain ids
200, so an id one layer accepted another refused half-way through a create.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.containers.record import check_name, state_dir
from lxcri_core.errors import BackendError, LxcriError, NetworkError, StorageError
from lxcri_core.ids import MAX_ID, check_id, valid_id
from lxcri_core.network import ipam, ports
from lxcri_core.storage import chain

LONGEST = "a" * (MAX_ID - 3) + "_.9"
HEX = "0123456789abcdef" * 4  # lxcri's and containerd's ids


def _lease(tmp: Path) -> Callable[[str], Any]:
    leases = ipam.Ipam(tmp, "lxtids", "10.255.0.0/16")  # a lease file only, no bridge
    return lambda cid: leases.allocate_lease(cid).container_id


CONSUMERS: list[tuple[str, Callable[[Path], Callable[[str], Any]], type[LxcriError]]] = [
    ("container name", lambda _: check_name, BackendError),
    ("storage id", lambda _: chain.check_container_id, StorageError),
    ("port chain id", lambda _: ports.check_container_id, NetworkError),
    ("ipam lease key", _lease, NetworkError),
]


@pytest.mark.parametrize(("what", "make", "error"), CONSUMERS, ids=[c[0] for c in CONSUMERS])
def test_every_consumer_takes_the_same_ids(
    what: str,
    make: Callable[[Path], Callable[[str], Any]],
    error: type[LxcriError],
    tmp_path: Path,
) -> None:
    check = make(tmp_path)
    for good in ("100", "web", "a.b_c-d", HEX, LONGEST, "9" * MAX_ID):
        assert check(good) == good, (what, good)
    for bad in ("", "-x", ".x", "_x", "a/b", "a b", "a:b", "a@b", "x" * (MAX_ID + 1), "é", "a\n"):
        with pytest.raises(error, match="1-64 letters"):
            check(bad)


def test_the_longest_id_fits_every_name_made_from_it(tmp_path: Path) -> None:
    assert valid_id(LONGEST) and len(LONGEST) == MAX_ID
    for kind, _, _ in ports.CHAINS:
        assert len(ports.chain_name(LONGEST, kind)) < 255  # nft's NFT_NAME_MAXLEN - 1
    d = state_dir(tmp_path, LONGEST)
    d.mkdir(parents=True)  # a file name (255 at most)
    assert d.name == LONGEST
    # <pool>/lxcri/containers/<id>: ZFS names are at most 255 bytes
    assert len(f"rpool/data/lxcri/containers/{LONGEST}") < 255


def test_check_id_names_what_it_checks() -> None:
    with pytest.raises(StorageError, match=r"^invalid widget id '\.\.'"):
        check_id("..", "widget id", StorageError)
