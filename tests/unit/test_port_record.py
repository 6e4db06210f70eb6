"""Records written before the one PortMapping still load, in the CLI and in the hook."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from lxcri_core.containers.record import ContainerRecord
from lxcri_core.hooks.run import _ports
from lxcri_core.network import ports
from lxcri_core.spec.model import PortMapping

OLD = Path(__file__).resolve().parents[1] / "data" / "records" / "lxcri-0.1.0.json"
WANT = (
    PortMapping(80, 8080, "tcp", ""),
    PortMapping(53, 5353, "udp", "127.0.0.1"),
    PortMapping(443, 8443, "tcp", "::1"),
)


def test_an_old_record_loads_with_its_ports() -> None:
    doc = json.loads(OLD.read_text())
    rec = ContainerRecord.from_json(doc)
    assert rec.spec.ports == WANT
    assert [p.address for p in rec.spec.ports] == [
        None,
        IPv4Address("127.0.0.1"),
        IPv6Address("::1"),
    ]
    # written back, the keys are the ones on disk: old and new lxcri read each other's
    assert json.loads(json.dumps(rec.to_json()))["spec"]["ports"] == doc["spec"]["ports"]


def test_the_hook_reads_the_same_record_into_the_same_mappings() -> None:
    # the hook reads ports without spec.model (RecordPort: no dataclasses to import);
    # same fields, same text, same addresses, the same rules as from the PortMapping
    doc = json.loads(OLD.read_text())
    got = _ports(doc)
    mixed: list[object] = list(got)  # RecordPort == PortMapping, field by field, both ways
    assert mixed == list(WANT) and list(WANT) == mixed
    assert [str(p) for p in got] == [str(p) for p in WANT]
    assert [p.address for p in got] == [p.address for p in WANT]
    v4, v6 = IPv4Address("10.88.0.7"), IPv6Address("fd42:88::7")
    rs = ports.publish_ruleset("web", got, v4, v6)
    assert rs == ports.publish_ruleset("web", WANT, v4, v6)
    text = json.dumps(rs)
    assert '"port": 80' in text and '"right": 8080' in text and '"right": "127.0.0.1"' in text
