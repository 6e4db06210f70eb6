"""Parsing and rendering of -P, --mount, --tmpfs, --read-only, --ulimit, --device, --init."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.containers.serial import from_dict, to_dict
from lxcri_core.errors import SpecError
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.lxc_config import LxcConfig, render_lxc_config
from lxcri_core.spec.model import ContainerSpec, Device, Mount, PortMapping, TmpfsMount, Ulimit
from lxcri_core.spec.options import (
    RunOptions,
    parse_device,
    parse_exposed,
    parse_mount,
    parse_tmpfs,
    parse_ulimit,
)

IMG: dict[str, Any] = {
    "config": {
        "Cmd": ["/bin/sh"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "9000-9001/tcp": {}, "7/sctp": {}},
        "Volumes": {"/data": {}},
    }
}


def _spec(**kw: Any) -> ContainerSpec:
    return build_spec(IMG, RunOptions(name="f", host_env={}, **kw))


def _render(spec: ContainerSpec) -> LxcConfig:
    return render_lxc_config(
        spec,
        name="f",
        rootfs_path=Path("/r"),
        state_dir=Path("/s"),
        volume_paths={m.target: Path("/v") for m in spec.mounts},
    )


# -- --tmpfs -----------------------------------------------------------------------------


def test_tmpfs_defaults_as_docker() -> None:
    t = parse_tmpfs("/run")
    assert t == TmpfsMount("/run", flags=("nosuid", "nodev", "noexec"))


def test_tmpfs_options_are_parsed_to_numbers() -> None:
    t = parse_tmpfs("/cache:size=64m,mode=0770,uid=33,gid=33,exec,ro,nr_inodes=1k")
    assert t.size == 64 << 20 and t.mode == 0o770 and (t.uid, t.gid) == (33, 33)
    assert t.nr_inodes == 1024
    assert t.flags == ("nosuid", "nodev", "exec", "ro")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("relative", "must be absolute"),
        ("/x:size=lots", "expected a size"),
        ("/x:size=0", "more than 0"),
        ("/x:mode=999", "octal"),
        ("/x:mode=17777", "out of range"),
        ("/x:suid", "'suid' is not allowed"),
        ("/x:dev", "'dev' is not allowed"),
        ("/x:bind", "unknown tmpfs option 'bind'"),
        ("/x:size=1m upperdir=/etc", "expected a size"),
        ("/x:uid=-1", "expected an integer|between"),
        ("/x:context=foo", "unknown tmpfs option"),
    ],
)
def test_tmpfs_bad_values(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_tmpfs(value)


def test_tmpfs_renders_from_parsed_values_only() -> None:
    spec = _spec(tmpfs=("/cache:size=8m,mode=1770", "/dev/shm:size=1m"))
    cfg = _render(spec)
    entries = cfg.values("lxc.mount.entry")
    assert "tmpfs cache tmpfs nosuid,nodev,noexec,size=8388608,mode=1770,create=dir 0 0" in entries
    # below /dev: in LXC's own /dev tmpfs
    assert "tmpfs dev/shm tmpfs nosuid,nodev,noexec,size=1048576,mode=1777,create=dir 0 0" in (
        entries
    )


@pytest.mark.parametrize(
    ("tmpfs", "message"),
    [
        (("/",), "must not|mounts that path"),
        (("/proc/x",), "mounts that path"),
        (("/.lxcri",), "mounts that path"),
        (("/dev",), "mounts that path"),
        (("/a", "/a/b"), "overlap"),
        (("/etc",), "overlap"),
        (("/etc/hosts",), "overlap"),
    ],
)
def test_tmpfs_refused_targets(tmpfs: tuple[str, ...], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _spec(tmpfs=tmpfs)


def test_tmpfs_over_a_volume_is_refused_and_replaces_an_image_volume() -> None:
    with pytest.raises(SpecError, match="overlap"):
        _spec(tmpfs=("/v",), volumes=("/v/x",))
    spec = _spec(tmpfs=("/data",))
    assert not spec.mounts and spec.tmpfs[0].target == "/data"


# -- --mount -----------------------------------------------------------------------------


def test_mount_docker_syntax(tmp_path: Path) -> None:
    assert parse_mount(f"type=bind,source={tmp_path},target=/in,readonly") == Mount(
        "/in", str(tmp_path), "bind", True
    )
    assert parse_mount(f"type=bind,src={tmp_path},dst=/in,ro=false") == Mount(
        "/in", str(tmp_path), "bind", False
    )
    assert parse_mount("type=volume,source=cache,destination=/c") == Mount("/c", "cache", "volume")
    assert parse_mount("target=/anon") == Mount("/anon", "", "anonymous")
    t = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700,readonly")
    assert t == TmpfsMount(
        "/t", size=1 << 20, mode=0o700, flags=("nosuid", "nodev", "noexec", "ro")
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type=bind,target=/x", "absolute source"),
        ("type=bind,source=rel,target=/x", "absolute source"),
        ("type=bind,source=/a/../etc,target=/x", "'..'"),
        ("type=nfs,target=/x", "must be bind, volume or tmpfs"),
        ("type=volume,source=/x", "target="),
        ("type=volume,source=bad name,target=/x", "not a volume name"),
        ("type=tmpfs,source=x,target=/x", "no source"),
        ("type=volume,target=/x,tmpfs-size=1m", "for type=tmpfs"),
        ("type=bind,source=/tmp,target=/x,bind-propagation=shared", "unknown key"),
        ("type=bind,source=/tmp,target=/x,readonly=maybe", "true or false"),
        ("target=/x,target=/y", "given twice"),
        ("type=volume,target=x", "must be absolute"),
    ],
)
def test_mount_bad_values(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_mount(value)


def test_mount_bind_source_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="bind source path does not exist"):
        _spec(mounts=(f"type=bind,source={tmp_path}/missing,target=/x",))
    spec = _spec(mounts=(f"type=bind,source={tmp_path},target=/x,readonly",))
    assert Mount("/x", str(tmp_path), "bind", True) in spec.mounts
    with pytest.raises(SpecError, match="two volumes"):
        _spec(volumes=("/x",), mounts=("target=/x",))


# -- --ulimit ----------------------------------------------------------------------------


def test_ulimit() -> None:
    assert parse_ulimit("nofile=1024:2048") == Ulimit("nofile", 1024, 2048)
    assert parse_ulimit("nproc=100") == Ulimit("nproc", 100, 100)
    assert parse_ulimit("core=-1") == Ulimit("core", -1, -1)
    assert parse_ulimit("memlock=0:unlimited") == Ulimit("memlock", 0, -1)
    cfg = _render(_spec(ulimits=("nofile=1024:2048", "core=0:-1", "nofile=10:20")))
    assert cfg.value("lxc.prlimit.nofile") == "10:20"  # the last one wins
    assert cfg.value("lxc.prlimit.core") == "0:unlimited"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nofile", "NAME=SOFT"),
        ("files=10", "unknown limit"),
        ("nofile=2048:1024", "must not exceed"),
        ("nofile=-1:10", "must not exceed"),
        ("nofile=1k", "NAME=SOFT"),
        ("nofile=1:2:3", "NAME=SOFT"),
        ("nofile=1\nlxc.x=1", "NAME=SOFT"),
    ],
)
def test_ulimit_bad_values(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_ulimit(value)


# -- --device ----------------------------------------------------------------------------


def test_device_forms() -> None:
    assert parse_device("/dev/fuse") == Device("/dev/fuse", "/dev/fuse", "rwm")
    assert parse_device("/dev/zero:/dev/z") == Device("/dev/zero", "/dev/z", "rwm")
    assert parse_device("/dev/zero:/dev/z:r") == Device("/dev/zero", "/dev/z", "r")
    assert parse_device("/dev/net/tun:mr") == Device("/dev/net/tun", "/dev/net/tun", "rm")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/etc/passwd", "must be a path below /dev/"),
        ("/dev/../etc/shadow", "must be a path below /dev/"),
        ("/dev/./zero", "must be a path below /dev/"),
        ("/dev/zero:/etc/zero", "must be a path below /dev/"),
        ("/dev/zero:/dev/fd/x", "not a device of its own"),
        ("/dev/shm/x", "not a device of its own"),
        ("/dev/pts/0", "not a device of its own"),
        ("/dev/zero:rwx", "letters of rwm"),
        ("/dev/zero:/dev/a:/dev/b", "HOST"),
        ("dev/zero", "below /dev/"),
        ("/dev/", "below /dev/"),
        ("/dev/a b", "below /dev/"),
    ],
)
def test_device_bad_values(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_device(value)


def test_device_renders_a_bind_mount_and_for_privileged_a_cgroup_rule() -> None:
    spec = _spec(devices=("/dev/zero:/dev/z:rw",))
    dev = spec.devices[0]
    resolved = dev.__class__(dev.path, dev.container_path, dev.permissions, "c", 1, 5)
    unpriv = _render(dataclasses.replace(spec, devices=(resolved,)))
    assert "/dev/zero dev/z none bind,create=file 0 0" in unpriv.values("lxc.mount.entry")
    assert unpriv.value("lxc.cgroup2.devices.allow") is None
    priv_spec = build_spec(IMG, RunOptions(name="f", host_env={}, privileged=True))
    priv = _render(dataclasses.replace(priv_spec, devices=(resolved,)))
    assert "c 1:5 rw" in priv.values("lxc.cgroup2.devices.allow")
    assert "c 1:5 rw" in priv.values("lxc.cgroup.devices.allow")
    with pytest.raises(SpecError, match="not looked up"):
        _render(dataclasses.replace(priv_spec, devices=(dev,)))
    with pytest.raises(SpecError, match="two devices"):
        _spec(devices=("/dev/zero:/dev/z", "/dev/null:/dev/z"))


# -- -P, --read-only, --init -------------------------------------------------------------


def test_parse_exposed() -> None:
    assert parse_exposed("80/tcp") == [(80, "tcp")]
    assert parse_exposed("53/udp") == [(53, "udp")]
    assert parse_exposed("8080") == [(8080, "tcp")]
    assert parse_exposed("9000-9001/tcp") == [(9000, "tcp"), (9001, "tcp")]
    assert parse_exposed("7/sctp") == []
    with pytest.raises(SpecError, match="image EXPOSE"):
        parse_exposed("http/tcp")


def test_publish_all_adds_every_exposed_port_not_published_yet() -> None:
    spec = _spec(publish_all=True, publish=("8080:80",))
    assert set(spec.ports) == {
        PortMapping(80, 8080, "tcp"),
        PortMapping(53, 0, "udp"),
        PortMapping(9000, 0, "tcp"),
        PortMapping(9001, 0, "tcp"),
    }
    assert _spec().ports == ()


def test_publish_all_refuses_a_hostile_expose_of_every_port() -> None:
    img = {"config": {"Cmd": ["/bin/sh"], "ExposedPorts": {"1-65535/tcp": {}}}}
    with pytest.raises(SpecError, match="exposes 65535 ports"):
        build_spec(img, RunOptions(name="f", host_env={}, publish_all=True))


def test_read_only_and_init() -> None:
    spec = _spec(read_only=True, init=True)
    assert spec.read_only and spec.init
    assert _render(spec).value("lxc.rootfs.options") == "ro"
    assert _render(_spec()).value("lxc.rootfs.options") is None


def test_new_fields_survive_the_record() -> None:
    spec = _spec(
        tmpfs=("/t:size=1m",), ulimits=("nofile=1:2",), devices=("/dev/zero",), read_only=True
    )
    assert from_dict(ContainerSpec, to_dict(spec)) == spec


# -- Proxmox ------------------------------------------------------------------------------


def test_pve_renders_devices_ulimits_and_tmpfs() -> None:
    from lxcri_core.spec.pve_config import render_pve_config
    from tests.spec.pve_schema import validate_params

    spec = _spec(
        devices=("/dev/fuse", "/dev/net/tun:r"),
        ulimits=("nofile=1024:2048",),
        tmpfs=("/run/my app:size=1m",),
    )
    cfg = render_pve_config(spec, 120, state_dir="/s")
    assert validate_params(cfg.api_params()) == []
    assert cfg.main.get("dev0") == "/dev/fuse"
    assert cfg.main.get("dev1") == "/dev/net/tun,deny-write=1"
    raw = cfg.raw_lxc_entries()
    assert ("lxc.prlimit.nofile", "1024:2048") in raw
    assert (
        "lxc.mount.entry",
        "tmpfs run/my\\040app tmpfs nosuid,nodev,noexec,size=1048576,mode=1777,create=dir 0 0",
    ) in raw


def test_pve_refuses_what_it_cannot_express() -> None:
    from lxcri_core.spec.pve_config import render_pve_config

    with pytest.raises(SpecError, match="--read-only cannot be expressed"):
        render_pve_config(_spec(read_only=True), 120, state_dir="/s")
    with pytest.raises(SpecError, match="host path only"):
        render_pve_config(_spec(devices=("/dev/zero:/dev/z",)), 120, state_dir="/s")
