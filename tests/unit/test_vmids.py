"""VMIDs on plain LXC (allocation under a lock, stable, resolution), pct's property syntax,
ContainerNotFound apart from CorruptState, and the CLI reaching containers only via Backend."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.containers import listing, pct_props, vmids
from lxcri_core.containers.record import load_record
from lxcri_core.errors import BackendError, ContainerNotFound, CorruptState, SpecError
from lxcri_core.spec.options import RunOptions

REPO = Path(__file__).resolve().parents[2]


def _fake_record(root: Path, name: str, cid: str, vmid: int | None = None) -> None:
    """A record as lxcri writes it (only what listing/find read), without a container."""
    from lxcri_core.containers.record import ContainerRecord, save_record
    from lxcri_core.spec.model import ContainerSpec

    sdir = root / "containers" / name
    sdir.mkdir(parents=True)
    spec = ContainerSpec(image="busybox", args=("true",))
    rec = ContainerRecord(
        id=cid,
        name=name,
        image="busybox",
        image_digest="sha256:" + "0" * 64,
        storage="dir",
        rootfs=str(sdir / "rootfs"),
        created="2026-01-01T00:00:00+00:00",
        spec=spec,
        vmid=vmid or 0,
    )
    save_record(root, rec)
    if vmid is None:  # a record of an older lxcri: no vmid key at all
        doc = json.loads((sdir / "lxcri.json").read_text())
        del doc["vmid"]
        (sdir / "lxcri.json").write_text(json.dumps(doc))


def _alloc_many(root: str, names: list[str], q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    for n in names:
        (Path(root) / "containers" / f".{n}.creating").mkdir(parents=True)
        q.put((n, vmids.allocate(Path(root), n)))


def test_vmids_are_unique_under_concurrent_allocation(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_alloc_many, args=(str(tmp_path), [f"c{i}-{j}" for j in range(6)], q))
        for i in range(6)
    ]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in range(36)]
    for p in procs:
        p.join()
    ids = [v for _, v in got]
    assert len(set(ids)) == 36
    assert sorted(ids) == list(range(100, 136))
    # the index agrees with what each got
    assert vmids.read_index(tmp_path) == {v: n for n, v in got}


def test_vmid_is_stable_and_freed_with_its_container(tmp_path: Path) -> None:
    (tmp_path / "containers" / "a").mkdir(parents=True)
    (tmp_path / "containers" / "b").mkdir()
    assert vmids.allocate(tmp_path, "a") == 100
    assert vmids.allocate(tmp_path, "b") == 101
    assert vmids.allocate(tmp_path, "a") == 100  # again: the same
    (tmp_path / "containers" / "a").rmdir()  # a is gone: 100 is free again, as on Proxmox
    (tmp_path / "containers" / "c").mkdir()
    assert vmids.allocate(tmp_path, "c") == 100
    with pytest.raises(BackendError, match="VMID 101 is taken by container b"):
        (tmp_path / "containers" / "d").mkdir()
        vmids.allocate(tmp_path, "d", 101)
    with pytest.raises(BackendError, match="out of range"):
        vmids.allocate(tmp_path, "d", 99)
    assert vmids.allocate(tmp_path, "d", 500) == 500


def test_an_older_record_gets_a_vmid_on_first_sight_and_keeps_it(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path)
    _fake_record(tmp_path, "old", "ab" * 32)
    _fake_record(tmp_path, "new", "cd" * 32, vmid=100)
    first = {c.name: c.vmid for c in listing.list_containers(cfg)}
    assert first == {"new": 100, "old": 101}
    assert load_record(tmp_path, "old").vmid == 101  # stored in its record
    (tmp_path / "containers" / vmids.INDEX).unlink()  # the index is a cache: rebuilt
    assert {c.name: c.vmid for c in listing.list_containers(cfg)} == first


def test_ctref_resolves_a_vmid_a_name_or_an_id_prefix(tmp_path: Path) -> None:
    from lxcri_core.backend import CtRef
    from lxcri_core.containers.lxc_backend import LxcBackend

    cfg = Config(root=tmp_path)
    _fake_record(tmp_path, "web", "abcd" + "0" * 60, vmid=100)
    _fake_record(tmp_path, "101", "ef01" + "0" * 60, vmid=102)  # a name of digits
    vmids.allocate(tmp_path, "web", 100)
    vmids.allocate(tmp_path, "101", 102)
    b = LxcBackend(cfg)
    assert b.resolve(CtRef("100")) == "web"
    assert b.resolve(CtRef("web")) == "web"
    assert b.resolve(CtRef("abcd")) == "web"
    assert b.resolve(CtRef("102")) == "101"
    assert b.resolve(CtRef("101")) == "101"  # no VMID 101: then the name
    assert b.container(CtRef("web")).vmid == 100
    with pytest.raises(ContainerNotFound, match="no such container: 999"):
        b.resolve(CtRef("999"))
    with pytest.raises(ContainerNotFound):
        b.status(CtRef("nope"))


def test_a_corrupt_record_is_corrupt_state_not_not_found(tmp_path: Path) -> None:
    _fake_record(tmp_path, "bad", "ab" * 32, vmid=100)
    (tmp_path / "containers" / "bad" / "lxcri.json").write_text("{not json")
    with pytest.raises(CorruptState, match="corrupt"):
        load_record(tmp_path, "bad")
    (tmp_path / "containers" / "bad" / "lxcri.json").write_text('{"id": 1}')
    with pytest.raises(CorruptState, match="unreadable"):
        load_record(tmp_path, "bad")
    with pytest.raises(ContainerNotFound):
        load_record(tmp_path, "none")
    assert not issubclass(CorruptState, ContainerNotFound)


def test_pct_properties_map_onto_run_options() -> None:
    opts, tags = pct_props.apply(
        RunOptions(),
        {
            "net0": "name=eth0,bridge=br9,ip=10.9.0.5/24,gw=10.9.0.1",
            "mp0": "data,mp=/data",
            "mp1": "/srv/x,mp=/x,ro=1",
            "memory": "512",
            "cores": "2",
            "hostname": "h1",
            "tags": "a;b,c",
        },
        "lxcri0",
    )
    assert (opts.bridge, opts.ip, opts.gateway) == ("br9", "10.9.0.5/24", "10.9.0.1")
    assert opts.volumes == ("data:/data", "/srv/x:/x:ro")
    assert (opts.memory, opts.cores, opts.hostname) == ("512m", "2", "h1")
    assert tags == ("a", "b", "c")
    dhcp, _ = pct_props.apply(RunOptions(), {"net0": "name=eth0,bridge=lxcri0,ip=dhcp"}, "lxcri0")
    assert (dhcp.bridge, dhcp.ip) == (None, None)  # lxcri's own bridge and lease


@pytest.mark.parametrize(
    ("props", "why"),
    [
        ({"net1": "name=eth1,bridge=x"}, "one interface"),
        ({"net0": "name=eth1,bridge=x"}, "eth0"),
        ({"net0": "name=eth0,ip=10.0.0.5"}, "CIDR"),
        ({"mp0": "local-lvm:8,mp=/data"}, "Proxmox storage volume"),
        ({"mp0": "data"}, "mp=/path"),
        ({"mp0": "/etc,mp=/a:/b"}, "cannot hold ':'"),
        ({"net0": "name=eth0,bridge=../../tmp"}, "not an interface name"),
        ({"memory": "512m"}, "MiB"),
        ({"tags": "ok;b@d"}, "no valid tag"),
        ({"swap": "512"}, "not supported on plain LXC"),
    ],
)
def test_pct_properties_plain_lxc_cannot_honour_are_one_clear_error(
    props: dict[str, str], why: str
) -> None:
    with pytest.raises(SpecError, match=why):
        pct_props.apply(RunOptions(), props, "lxcri0")


def test_the_cli_reaches_containers_only_through_the_backend() -> None:
    """No CLI module imports the plain-LXC engine: every front end uses open_backend."""
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "plugin" / "cli").glob("*.py")
        if re.search(r"containers\.engine|containers import engine|\bengine\.", p.read_text())
    ]
    assert offenders == []


def test_run_rules_live_in_core_for_every_front_end() -> None:
    from lxcri_core.lifecycle import check_run

    with pytest.raises(SpecError, match="--rm and --restart cannot be combined"):
        check_run(RunOptions(restart="always"), detach=True, auto_remove=True)
    with pytest.raises(SpecError, match="--restart on-failure needs -d"):
        check_run(RunOptions(restart="on-failure"), detach=False, auto_remove=False)
    check_run(RunOptions(restart="no"), detach=False, auto_remove=True)
    check_run(RunOptions(restart="always"), detach=True, auto_remove=False)
