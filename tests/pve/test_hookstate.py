"""The hookscript's cheap view of lxcri's CT record and its pre-start memo (pve_hookstate)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxcri_pve.backends import pve_hookstate as hs
from lxcri_pve.backends.pve_state import CtState, PortRecord, save_state

from lxcri_core.errors import CorruptState


def _names(cls: type, with_default: bool) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
        == with_default
    }


def test_the_field_lists_are_the_records() -> None:
    assert set(hs.STATE_REQUIRED) == _names(CtState, False)
    assert set(hs.STATE_OPTIONAL) == _names(CtState, True)
    assert set(hs.PORT_REQUIRED) == _names(PortRecord, False)
    assert set(hs.PORT_OPTIONAL) == _names(PortRecord, True)


def _state(**kw: object) -> CtState:
    base: dict[str, object] = dict(
        vmid=101, name="web", image="i", image_digest="sha256:0", storage="local",
        storage_type="dir", rootfs_volume="local:101/x", created="now",
    )  # fmt: skip
    return CtState(**{**base, **kw})  # type: ignore[arg-type]


def test_a_record_reads_as_the_backend_reads_it(tmp_path: Path) -> None:
    st = _state(ports=(PortRecord(8080, 80), PortRecord(53, 53, "udp", "127.0.0.1")),
                bridge="vmbr0", ipv4="10.0.0.5/24", restart="always")  # fmt: skip
    save_state(tmp_path, st)
    got = hs.load_hook_state(str(tmp_path), 101)
    assert got is not None
    for name in hs.HookState.__slots__:
        if name != "ports":
            assert getattr(got, name) == getattr(st, name), name
    assert [str(p) for p in got.ports] == [str(p) for p in st.ports]
    assert hs.load_hook_state(str(tmp_path), 102) is None  # not lxcri's


@pytest.mark.parametrize("fault", ["not json", "a list", "keys missing", "unknown key", "port"])
def test_a_bad_record_is_corrupt_with_the_backends_words(tmp_path: Path, fault: str) -> None:
    good = _state(ports=(PortRecord(8080, 80),)).to_json()
    doc = {
        "not json": "{not json",
        "a list": "[]",
        "keys missing": '{"vmid": 101}',
        "unknown key": json.dumps({**good, "surprise": 1}),
        "port": json.dumps({**good, "ports": [{"host_port": 1, "container_port": 2, "x": 3}]}),
    }[fault]
    sdir = tmp_path / "pve" / "101"
    sdir.mkdir(parents=True)
    (sdir / hs.STATE).write_text(doc)
    with pytest.raises(CorruptState, match=r"lxcri's record of CT 101 .* is unreadable"):
        hs.load_hook_state(str(tmp_path), 101)


def test_the_memo_holds_only_while_every_input_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, storage = tmp_path / "101.conf", tmp_path / "storage.cfg"
    conf.write_text("rootfs: local:101/subvol-101-disk-0.subvol,size=8G\nunprivileged: 1\n")
    storage.write_text("dir: local\n\tpath /var/lib/vz\n")
    monkeypatch.setenv("LXCRI_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "config.yaml").write_text("")
    key = hs.memo_key(str(conf), str(storage))
    hs.save_memo(str(tmp_path), key, [("/x/images/101", 100000)])
    assert oct((tmp_path / hs.PRIVATE_MEMO).stat().st_mode & 0o777) == "0o600"
    assert hs.memo_dirs(str(tmp_path)) == [("/x/images/101", 100000)]
    # a volume moved (pct.conf), a storage changed, lxcri's config edited, another pve root
    for change in (
        lambda: conf.write_text(conf.read_text().replace("local:", "other:")),
        lambda: storage.write_text("dir: local\n\tpath /srv\n"),
        lambda: (tmp_path / "config.yaml").write_text("pve_root: /elsewhere\n"),
        lambda: monkeypatch.setenv("LXCRI_PVE_ROOT", "/elsewhere"),
    ):
        change()
        assert hs.memo_dirs(str(tmp_path)) is None
        hs.save_memo(str(tmp_path), hs.memo_key(str(conf), str(storage)), [("/y", None)])
        assert hs.memo_dirs(str(tmp_path)) == [("/y", None)]
    (tmp_path / hs.PRIVATE_MEMO).write_text("{garbage")
    assert hs.memo_dirs(str(tmp_path)) is None


def test_private_dir_tightens_and_refuses_a_non_directory(tmp_path: Path) -> None:
    d = tmp_path / "images"
    d.mkdir(mode=0o755)
    hs.private_dir(str(d), 100000)
    st = d.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o710, 0, 100000)
    hs.private_dir(str(d), None)
    assert d.stat().st_mode & 0o777 == 0o700
    (tmp_path / "f").write_text("")
    os.symlink(d, tmp_path / "link")
    from lxcri_core.errors import BackendError

    for bad in ("f", "link"):  # a symlink planted for a volume dir is not followed
        with pytest.raises(BackendError, match="not a directory"):
            hs.private_dir(str(tmp_path / bad), None)


def test_the_hookscript_phases_import_nothing_heavy(tmp_path: Path) -> None:
    save_state(tmp_path, _state(ports=(PortRecord(8080, 80),)))
    code = (
        "import sys\n"
        "from lxcri_pve.backends import pve_hookscript, pve_hookstate\n"
        f"pve_hookstate.load_hook_state({str(tmp_path)!r}, 101)\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = {"dataclasses", "typing", "pathlib", "subprocess", "tempfile", "logging",
             "lxcri_core.config", "lxcri_pve.backends.pve_state",
             "lxcri_pve.backends.pve_local"}  # fmt: skip
    assert heavy & set(out.stdout.split()) == set()


def test_pre_start_takes_back_what_a_crash_left_and_then_uses_its_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets
    from ipaddress import IPv4Interface

    from lxcri_pve.backends import pve_hookscript

    from lxcri_core.network import ports

    table = "lxcritest" + secrets.token_hex(4)
    pve_root = tmp_path / "etc-pve"
    (pve_root / "nodes" / "pve1" / "lxc").mkdir(parents=True)
    (pve_root / "storage.cfg").write_text("dir: local\n\tpath /var/lib/vz\n")
    monkeypatch.setenv("LXCRI_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("LXCRI_PVE_ROOT", str(pve_root))
    monkeypatch.setenv("LXCRI_PVE_NODE", "pve1")
    root = tmp_path / "root"
    save_state(root, _state(ports=(PortRecord(18080, 80),), nft_table=table))
    sdir = root / "pve" / "101"
    try:
        # a post-start that crashed after publishing: its marker and its rules
        (sdir / hs.PUBLISHED).write_text('{"ipv4": "10.99.8.2"}')
        cid = pve_hookscript.chain_id(101)
        ports.publish(cid, [ports.RecordPort(80, 18080)], IPv4Interface("10.99.8.2/24"),
                      table=table, check_conflicts=False)  # fmt: skip
        assert [p.container_id for p in ports.list_published(table=table)] == [cid]
        assert pve_hookscript.main(["101", "pre-start"], str(root)) == 0
        assert ports.list_published(table=table) == []
        assert not (sdir / hs.PUBLISHED).exists()
        assert (sdir / hs.PRIVATE_MEMO).exists()
        # the next start: the memo answers; the backend (which needs nodes/) is not made
        shutil.rmtree(pve_root / "nodes")
        assert pve_hookscript.main(["101", "pre-start"], str(root)) == 0
        (pve_root / "storage.cfg").write_text("dir: local\n\tpath /srv\n")  # memo stale
        assert pve_hookscript.main(["101", "pre-start"], str(root)) == 1  # no nodes/: said
        assert "is not a Proxmox VE cluster file system" in (sdir / hs.HOOK_LOG).read_text()
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
