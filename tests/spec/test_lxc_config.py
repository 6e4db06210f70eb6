"""render_lxc_config: specific keys, the argv file, volumes, limits as v1 and v2 keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.lxc_config import DEFAULT_SECCOMP, LxcConfig, render_lxc_config
from lxcri_core.spec.model import ContainerSpec
from lxcri_core.spec.options import RunOptions

GOLDEN = Path(__file__).resolve().parent / "golden" / "web.lxc.conf"
IMG = {
    "config": {
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["serve", "--title", "hello world", 'it\'s "quoted"'],
        "Env": ["GREETING= padded ", "MULTI=a\nb", "PLAIN=x y"],
        "Volumes": {"/var/lib/app": {}},
        "WorkingDir": "/srv",
    }
}


def _render(tmp_path: Path, **kw: Any) -> tuple[ContainerSpec, LxcConfig]:
    opts = {"name": "web", "host_env": {}, **kw}
    spec = build_spec(IMG, RunOptions(**opts), image="example/web:1")
    return spec, render_lxc_config(
        spec,
        name="web",
        rootfs_path=Path("/var/lib/lxcri/rootfs/web"),
        state_dir=Path("/run/lxcri/web"),
        volume_paths={"/var/lib/app": Path("/var/lib/lxcri/volumes/anon-1"), "data": tmp_path},
    )


def test_exact_argv_goes_through_nul_separated_files(tmp_path):
    spec, cfg = _render(tmp_path)
    argv = cfg.files["ctr/argv"].split(b"\0")
    assert argv[-1] == b"" and [a.decode() for a in argv[:-1]] == list(spec.args)
    assert cfg.files["ctr/env"].decode().split("\0")[:-1] == list(spec.env)
    doc = json.loads(cfg.files["process.json"])
    assert doc["version"] == 1
    assert doc["args"] == ["/entry.sh", "serve", "--title", "hello world", 'it\'s "quoted"']
    assert doc["env"] == list(spec.env)
    assert "MULTI=a\nb" in doc["env"] and doc["cwd"] == "/srv"
    assert cfg.value("lxc.init.cmd") == "/.lxcri/init"
    assert cfg.value("lxc.execute.cmd") == "/.lxcri/init"
    assert cfg.value("lxc.init.cwd") == "/srv"
    assert "/run/lxcri/web/ctr .lxcri none bind,ro,create=dir 0 0" in cfg.values("lxc.mount.entry")
    env = cfg.values("lxc.environment")
    # values LXC would mangle are left to the shim
    assert "PLAIN=x y" in env
    assert not any(e.startswith(("GREETING=", "MULTI=")) for e in env)
    assert "\nb" not in cfg.text.replace("\nlxc.", "").replace("\n#", "")


def test_unprivileged_defaults(tmp_path):
    _, cfg = _render(tmp_path)
    assert cfg.values("lxc.idmap") == ["u 0 100000 65536", "g 0 100000 65536"]
    assert cfg.value("lxc.rootfs.path") == "dir:/var/lib/lxcri/rootfs/web"
    assert cfg.value("lxc.uts.name") == "web"
    keep = (cfg.value("lxc.cap.keep") or "").split()
    assert "chown" in keep and "sys_admin" not in keep and "net_admin" not in keep
    assert cfg.value("lxc.seccomp.profile") == "/run/lxcri/web/seccomp"
    assert cfg.files["seccomp"].decode().startswith(DEFAULT_SECCOMP)
    assert b"keyctl errno 38" in cfg.files["seccomp"]
    assert cfg.value("lxc.cgroup.devices.deny") is None
    assert cfg.value("lxc.no_new_privs") is None
    assert cfg.value("lxc.signal.halt") == "SIGTERM"


def test_limits_as_v1_and_v2_keys(tmp_path):
    _, cfg = _render(tmp_path, memory="128m", cores="2", pids_limit="50")
    assert cfg.value("lxc.cgroup.memory.limit_in_bytes") == str(128 << 20)
    assert cfg.value("lxc.cgroup2.memory.max") == str(128 << 20)
    assert cfg.value("lxc.cgroup.pids.max") == "50"
    assert cfg.value("lxc.cgroup2.pids.max") == "50"
    assert cfg.value("lxc.cgroup.cpu.cfs_period_us") == "100000"
    assert cfg.value("lxc.cgroup.cpu.cfs_quota_us") == "200000"
    assert cfg.value("lxc.cgroup2.cpu.max") == "200000 100000"
    _, half = _render(tmp_path, cpus="0.5", cores="2")
    assert half.value("lxc.cgroup2.cpu.max") == "50000 100000"
    _, none = _render(tmp_path)
    assert "cgroup" not in none.text.replace("cgroup:mixed", "")


def test_mounts(tmp_path):
    hostfile = tmp_path / "app.conf"
    hostfile.write_text("x")
    _, cfg = _render(
        tmp_path,
        volumes=("/srv/my data:/data/in side:ro", f"{hostfile}:/etc/app.conf", "data:/var/data"),
    )
    entries = cfg.values("lxc.mount.entry")
    assert "/srv/my\\040data data/in\\040side none bind,create=dir,ro 0 0" in entries
    assert f"{hostfile} etc/app.conf none bind,create=file 0 0" in entries
    assert f"{tmp_path} var/data none bind,create=dir 0 0" in entries
    assert "/var/lib/lxcri/volumes/anon-1 var/lib/app none bind,create=dir 0 0" in entries
    with pytest.raises(SpecError, match="volume 'other' has no host directory"):
        _render(tmp_path, volumes=("other:/o",))


def test_network(tmp_path):
    _, cfg = _render(
        tmp_path,
        bridge="br0",
        ip="10.0.0.5/24",
        gateway="10.0.0.1",
        mtu="1400",
        mac_address="02:00:00:00:00:05",
    )
    assert cfg.value("lxc.net.0.type") == "veth"
    assert cfg.value("lxc.net.0.link") == "br0"
    assert cfg.value("lxc.net.0.flags") == "up"
    assert cfg.value("lxc.net.0.ipv4.address") == "10.0.0.5/24"
    assert cfg.value("lxc.net.0.ipv4.gateway") == "10.0.0.1"
    assert cfg.value("lxc.net.0.mtu") == "1400"
    assert cfg.value("lxc.net.0.hwaddr") == "02:00:00:00:00:05"
    _, dhcp = _render(tmp_path)
    assert dhcp.value("lxc.net.0.ipv4.address") is None
    _, none = _render(tmp_path, network="none")
    assert none.values("lxc.net.0.type") == ["empty"] and none.value("lxc.net.0.link") is None


def test_security_variants(tmp_path):
    _, priv = _render(tmp_path, privileged=True)
    assert priv.value("lxc.idmap") is None and priv.value("lxc.cap.keep") is None
    assert priv.value("lxc.seccomp.profile") is None
    assert priv.value("lxc.cgroup.devices.deny") == "a"
    assert "c 1:3 rwm" in priv.values("lxc.cgroup2.devices.allow")
    strict = tmp_path / "strict.seccomp"
    strict.write_text("2\ndenylist\nmount errno 1\n")
    _, nnp = _render(
        tmp_path,
        security_opts=("no-new-privileges", f"seccomp={strict}"),
        cap_drop=("ALL",),
        user="1000:1000",
    )
    assert nnp.value("lxc.no_new_privs") == "1"
    # read at create: the container keeps the profile it was created with
    assert nnp.value("lxc.seccomp.profile") == "/run/lxcri/web/seccomp"
    assert nnp.files["seccomp"] == strict.read_bytes()
    assert nnp.value("lxc.cap.keep") == "none"
    # without CAP_SETUID the shim cannot switch: LXC does, and there is no user file
    assert (nnp.value("lxc.init.uid"), nnp.value("lxc.init.gid")) == ("1000", "1000")
    assert "ctr/user" not in nnp.files
    _, keyctl = _render(tmp_path, keyctl=True, nesting=True)
    assert b"keyctl" not in keyctl.files["seccomp"]
    assert keyctl.value("lxc.apparmor.allow_nesting") == "1"


def test_etc_files_and_hooks(tmp_path):
    spec = build_spec(
        IMG, RunOptions(name="web", ip="10.0.0.5/24", add_hosts=("db:10.0.0.9",), host_env={})
    )
    cfg = render_lxc_config(
        spec,
        name="web",
        rootfs_path=Path("/r"),
        state_dir=Path("/s"),
        volume_paths={"/var/lib/app": Path("/v")},
        host_resolv_conf="nameserver 10.0.0.1\n",
        hooks={"pre-start": "/usr/lib/lxcri/hook", "post-stop": "/usr/lib/lxcri/hook"},
        log_file=Path("/var/log/lxcri/web.log"),
    )
    assert cfg.files["hosts"].decode().endswith("10.0.0.9\tdb\n10.0.0.5\tweb\n")
    assert cfg.files["resolv.conf"] == b"nameserver 10.0.0.1\n"
    assert cfg.files["hostname"] == b"web\n"
    entries = cfg.values("lxc.mount.entry")
    for name in ("hosts", "hostname", "resolv.conf"):
        assert f"/s/{name} etc/{name} none bind,create=file 0 0" in entries
    assert cfg.value("lxc.hook.version") == "1"
    assert cfg.value("lxc.hook.pre-start") == "/usr/lib/lxcri/hook"
    assert cfg.value("lxc.log.file") == "/var/log/lxcri/web.log"


def test_bad_inputs(tmp_path):
    spec, _ = _render(tmp_path)
    with pytest.raises(SpecError, match="must be absolute"):
        render_lxc_config(
            spec, name="web", rootfs_path=Path("/r"), state_dir=Path("/s"), init_shim_path="init"
        )
    with pytest.raises(SpecError, match="newline"):
        render_lxc_config(
            spec,
            name="web",
            rootfs_path=Path("/r\nlxc.x = 1"),
            state_dir=Path("/s"),
            volume_paths={"/var/lib/app": Path("/v")},
        )


def test_user_and_groups_go_to_the_shim(tmp_path):
    _, cfg = _render(tmp_path, user="1000:1000", group_add=("44", "7"))
    # the shim sets them: LXC leaves an unprivileged container's groups empty
    assert cfg.files["ctr/user"] == b"1000\x001000\x0044\x007\x00"
    assert cfg.value("lxc.init.uid") is None and cfg.value("lxc.init.groups") is None


def test_group_add_without_setgid_is_refused(tmp_path):
    with pytest.raises(SpecError, match="--group-add needs the SETUID and SETGID"):
        _render(tmp_path, user="1000", group_add=("44",), cap_drop=("SETGID",))


def test_golden(tmp_path):
    spec = build_spec(IMG, RunOptions(name="web", memory="256m", pids_limit="100", host_env={}))
    cfg = render_lxc_config(
        spec,
        name="web",
        rootfs_path=Path("/var/lib/lxcri/rootfs/web"),
        state_dir=Path("/run/lxcri/web"),
        volume_paths={"/var/lib/app": Path("/var/lib/lxcri/volumes/anon-1")},
    )
    assert cfg.text == GOLDEN.read_text()


def test_env_with_carriage_return_goes_through_the_shim_only(tmp_path):
    spec = build_spec(IMG, RunOptions(name="web", env=("CR=a\rb",), host_env={}))
    cfg = render_lxc_config(
        spec,
        name="web",
        rootfs_path=Path("/r"),
        state_dir=Path("/s"),
        volume_paths={"/var/lib/app": Path("/v")},
    )
    assert "CR=a\rb" in cfg.files["ctr/env"].decode().split("\0")
    assert not any(e.startswith("CR=") for e in cfg.values("lxc.environment"))


def test_the_shared_shim_is_mounted_read_only_over_the_state_mount(tmp_path):
    spec, _ = _render(tmp_path)
    cfg = render_lxc_config(
        spec,
        name="web",
        rootfs_path=Path("/r"),
        state_dir=Path("/run/lxcri/web"),
        volume_paths={"/var/lib/app": tmp_path, "data": tmp_path},
        init_shim_source=Path("/var/lib/lxcri/lib/lxcri-init"),
    )
    entries = cfg.values("lxc.mount.entry")
    ctr = entries.index("/run/lxcri/web/ctr .lxcri none bind,ro,create=dir 0 0")
    # after /.lxcri itself: a mount on top of it, read-only
    assert entries[ctr + 1] == "/var/lib/lxcri/lib/lxcri-init .lxcri/init none bind,ro 0 0"
    assert cfg.value("lxc.execute.cmd") == "/.lxcri/init"
