"""One IdMap (spec.model): lxc.idmap lines, the unpacker's and the storage's shift, records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core import unpack
from lxcri_core.containers.record import ContainerRecord
from lxcri_core.errors import LxcriError, UnpackError
from lxcri_core.spec.model import DEFAULT_IDMAPS, IdMap
from lxcri_core.storage.chain import chain_key
from lxcri_core.unpack.model import shift

OLD = Path(__file__).resolve().parents[1] / "data" / "records" / "lxcri-0.1.0.json"


def test_one_class_everywhere() -> None:
    assert unpack.IdMap is IdMap
    assert IdMap() == IdMap(100000, 65536) == IdMap(host=100000, count=65536, start=0, kind="u")
    assert (IdMap(kind="u"), IdMap(kind="g")) == DEFAULT_IDMAPS


def test_an_old_record_loads_its_id_maps() -> None:
    rec = ContainerRecord.from_json(json.loads(OLD.read_text()))
    assert rec.spec.security.idmaps == DEFAULT_IDMAPS
    doc = json.loads(json.dumps(rec.to_json()))
    assert doc["spec"]["security"]["idmaps"][1] == {
        "kind": "g",
        "start": 0,
        "host": 100000,
        "count": 65536,
    }


def test_chain_keys_on_disk_are_unchanged() -> None:
    """Storage keys of shifted chains were ``<chain> idmap BASE:COUNT``; they still are."""
    chain = "sha256:" + "c" * 64
    old = hashlib.sha256(f"{chain} idmap 200000:65536".encode()).hexdigest()
    assert chain_key(chain, IdMap(200000, 65536)) == f"sha256:{old}"
    assert chain_key(chain, IdMap(200000, 65536, kind="g")) == f"sha256:{old}"


def test_shift_and_host_id() -> None:
    m = IdMap(200000, 10, start=5)
    assert m.host_id(5) == 200000 and m.host_id(14) == 200009
    assert m.host_id(4) is None and m.host_id(15) is None
    with pytest.raises(UnpackError, match=r"id 15 is outside the container id range 5\.\.14"):
        shift(m, 15, "entry 'f'")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: IdMap(-1, 10),
        lambda: IdMap(0, 0),
        lambda: IdMap(2**32 - 10, 10),
        lambda: IdMap(0, 10, start=2**32 - 5),
        lambda: IdMap.parse("bogus"),
        lambda: IdMap.parse("1:-2"),
        lambda: IdMap.parse("1:2:3"),
    ],
)
def test_invalid_maps_are_refused(bad: Callable[[], object]) -> None:
    with pytest.raises(LxcriError, match="invalid id map"):
        bad()
