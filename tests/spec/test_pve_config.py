"""pct.conf: lossless round trip of recorded files, editing, property strings, and
render_pve_config validated against the PVE API schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.errors import SpecError
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.model import ContainerSpec
from lxcri_core.spec.options import RunOptions
from lxcri_core.spec.pve_config import (
    VALID_LXC_KEYS,
    PveConfig,
    PveSection,
    encode_description_line,
    parse_property_string,
    parse_pve_config,
    render_property_string,
    render_pve_config,
)
from tests.spec.pve_schema import load_schema, validate_params

DATA = Path(__file__).resolve().parents[1] / "data" / "pve"
CONFS = sorted(DATA.glob("*.conf"))

NGINX = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NGINX_VERSION=1.29.3",
        ],
        "Volumes": {"/var/cache/nginx": {}},
        "StopSignal": "SIGQUIT",
    },
}


def test_recorded_files_exist():
    assert len(CONFS) >= 5


@pytest.mark.parametrize("path", CONFS, ids=lambda p: p.name)
def test_round_trip_recorded(path):
    text = path.read_text()
    cfg = parse_pve_config(text)
    assert cfg.render() == text


def test_snapshots_and_description():
    cfg = parse_pve_config((DATA / "101-debian-snapshots.conf").read_text())
    assert cfg.main.description == "Debian 12 build box\n\nowner: ops team, ticket INFRA-2231"
    assert list(cfg.snapshots) == ["after-install", "before-upgrade"]
    snap = cfg.snapshots["before-upgrade"]
    assert snap.get("parent") == "after-install" and snap.get("snaptime") == "1730800123"
    assert cfg.main.get("parent") == "before-upgrade"
    assert cfg.main.get("memory") == "2048" and snap.get("memory") == "2048"
    assert cfg.snapshots["after-install"].get("memory") == "1024"
    pending = parse_pve_config((DATA / "300-pending.conf").read_text()).pending
    assert pending is not None and pending.get("delete") == "swap"


def test_lxc_keys_and_oci_env():
    cfg = parse_pve_config((DATA / "200-oci-nginx.conf").read_text())
    env = cfg.main.get_all("lxc.environment.runtime")
    assert env[1] == "NGINX_VERSION=1.29.3" and len(env) == 6
    params = cfg.api_params()
    assert params["env"].split("\0") == env
    assert params["entrypoint"] == "/docker-entrypoint.sh nginx -g daemon off;"
    assert validate_params(params) == []
    hand = parse_pve_config((DATA / "110-privileged-hand-edited.conf").read_text())
    assert hand.main.lxc()[:2] == [("lxc.apparmor.profile", "unconfined"), ("lxc.cap.drop", "")]


@pytest.mark.parametrize("path", CONFS, ids=lambda p: p.name)
def test_recorded_files_match_schema(path):
    """The recorded files are realistic: their options pass the API schema too."""
    cfg = parse_pve_config(path.read_text())
    params = {k: v for k, v in cfg.api_params().items()}
    assert validate_params(params, "update") == []


def test_editing_keeps_untouched_lines_and_writes_pve_form():
    text = (DATA / "110-privileged-hand-edited.conf").read_text()
    cfg = parse_pve_config(text)
    cfg.main.set("memory", 2048)
    cfg.main.set("cpulimit", "1.5")
    cfg.main.set("onboot", True)
    cfg.main.delete("lock")
    cfg.main.add("lxc.environment.runtime", "A=1")
    out = cfg.render()
    assert "memory: 2048\n" in out and "lock:" not in out
    assert "lxc.apparmor.profile = unconfined\n" in out  # hand-written form kept
    keys = [e.key for e in cfg.main if e.is_option]
    assert keys.index("cpulimit") == keys.index("cores") + 1
    assert out.index("onboot: 1") < out.index("ostype: centos")
    # write_pct_config puts the environment before the other raw keys
    assert "lxc.mount.auto: proc:rw sys:rw cgroup:rw\n" in out
    assert "lxc.environment.runtime: A=1\nlxc.apparmor.profile = unconfined\n" in out
    assert parse_pve_config(out).render() == out


def test_parse_errors_name_the_line():
    with pytest.raises(SpecError, match="line 2"):
        parse_pve_config("arch: amd64\nthis is not a config line\n")


@pytest.mark.parametrize(
    "line",
    [
        "memory:",  # empty value: parse_pct_config's option regex wants (.+?)
        "memory:   ",
        "[bad section!]",  # neither [pve:pending] nor [a-z][a-z0-9_-]+
        "[a]",  # snapshot names have two characters at least
        "[pve:other]",
        "delete: swap",  # only in [pve:pending]
        " arch: amd64",
        "Arch: amd64",  # keys are [a-z][a-z_]*\d*
        "host-managed: 1",
        "lxc.bad key: 1",
        "lxc.rootfs.path: /x",  # is_valid_lxc_conf_key: auto generated from rootfs
        "lxc.no_new_privs: 1",  # not a key pve-container accepts
    ],
)
def test_lines_pve_rejects_are_errors(line):
    """PVE::LXC::Config::parse_pct_config's handle_error cases, line number in the message."""
    with pytest.raises(SpecError, match=r"pct\.conf line 3"):
        parse_pve_config(f"arch: amd64\nhostname: x\n{line}\n")


def test_pending_section_is_pve_pending():
    """parse_pct_config: ``[pve:pending]`` (any case) is pending; ``[pending]`` matches the
    snapshot pattern, so PVE reads it as a snapshot named 'pending'."""
    cfg = parse_pve_config("memory: 512\n\n[PVE:Pending]\nmemory: 1024\ndelete: swap\n")
    assert cfg.pending is not None and cfg.pending.get("memory") == "1024"
    assert cfg.snapshots == {}
    old = parse_pve_config("memory: 512\n\n[pending]\nmemory: 1024\n")
    assert old.pending is None and list(old.snapshots) == ["pending"]
    with pytest.raises(SpecError, match="only allowed in"):
        parse_pve_config("memory: 512\n\n[pending]\ndelete: swap\n")


def test_key_given_twice_last_wins():
    """parse_pct_config assigns ``$conf->{$key} = $value`` line by line: the last one wins."""
    text = "arch: amd64\nmemory: 512\nhostname: a\nmemory: 1024\n"
    cfg = parse_pve_config(text)
    assert cfg.render() == text
    assert cfg.main.get("memory") == "1024"
    assert cfg.main.options()["memory"] == "1024"
    assert cfg.api_params()["memory"] == "1024"
    cfg.main.set("memory", 2048)  # one line remains, as PVE would write it
    assert cfg.render() == "arch: amd64\nhostname: a\nmemory: 2048\n"
    # repeated lxc keys all count
    cfg = parse_pve_config("lxc.idmap: u 0 1 2\nlxc.idmap: g 0 1 2\n")
    assert cfg.main.get_all("lxc.idmap") == ["u 0 1 2", "g 0 1 2"]


def test_old_description_line_is_decoded():
    """parse_pct_config: ``description: text`` adds decode_text(text) (no newline), ``#``
    lines add their decoded text and a newline, in file order."""
    cfg = parse_pve_config((DATA / "120-old-description.conf").read_text())
    assert cfg.main.description == "Legacy web box: keep"
    assert cfg.api_params()["description"] == "Legacy web box: keep"
    assert "description" not in cfg.main.options()
    mixed = parse_pve_config("#first\ndescription: a%3Ab\narch: amd64\n#last\n")
    assert mixed.main.description == "first\na:blast"
    cfg.main.description = "new: text"  # written the way PVE writes it now
    out = cfg.render()
    assert out.startswith("#new%3A text\narch: amd64\n") and "description:" not in out


def test_set_into_section_with_trailing_blank():
    cfg = parse_pve_config((DATA / "101-debian-snapshots.conf").read_text())
    cfg.main.set("zzz", "1")
    out = cfg.render()
    assert "unprivileged: 1\nzzz: 1\n\n[after-install]" in out


def test_property_strings():
    assert parse_property_string("local-lvm:vm-1-disk-0,mp=/d,backup=1", "volume") == {
        "volume": "local-lvm:vm-1-disk-0",
        "mp": "/d",
        "backup": "1",
    }
    net = {"type": "veth", "ip": "dhcp", "name": "eth0", "bridge": "vmbr0", "tag": 5, "fw": None}
    assert (
        render_property_string(net, None, ("name",))
        == "name=eth0,bridge=vmbr0,ip=dhcp,tag=5,type=veth"
    )
    mp = {"ro": True, "mp": "/x", "volume": "/host", "backup": False}
    assert render_property_string(mp, "volume", ("mp",)) == "/host,mp=/x,backup=0,ro=1"
    for bad in ("a=1,a=2", "x,y", "novalue"):
        with pytest.raises(SpecError):
            parse_property_string(bad)
    with pytest.raises(SpecError, match="cannot contain ','"):
        render_property_string({"a": "x,y"})


_key = st.from_regex(r"[a-z][a-z_]{0,8}[0-9]?", fullmatch=True).filter(
    lambda k: not k.startswith("lxc") and k != "delete"
)
_value = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
_line = st.one_of(
    st.tuples(st.just("opt"), st.one_of(_key, st.just("description")), _value),
    st.tuples(
        st.just("lxc"),
        st.one_of(
            st.sampled_from(sorted(VALID_LXC_KEYS)).map(lambda k: "lxc." + k),
            st.from_regex(r"lxc\.(cgroup2|prlimit|net)\.[a-z0-9_.]{1,8}", fullmatch=True),
        ),
        _value,
    ),
    st.tuples(
        st.just("#"),
        st.just(""),
        st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t),
    ),
    st.tuples(st.just(""), st.just(""), st.just("")),
)


@given(
    main=st.lists(_line, max_size=15),
    snaps=st.lists(
        st.tuples(
            st.one_of(
                st.from_regex(r"[a-z][a-z0-9_-]{1,10}", fullmatch=True), st.just("pve:pending")
            ),
            st.lists(_line, max_size=6),
        ),
        max_size=3,
    ),
    final_newline=st.booleans(),
)
def test_round_trip_generated(main, snaps, final_newline):
    def render(lines: list[tuple[str, str, str]]) -> list[str]:
        out = []
        for kind, key, value in lines:
            if kind in ("opt", "lxc"):
                out.append(f"{key}: {value}")
            elif kind == "#":
                out.append("#" + value)
            else:
                out.append("")
        return out

    lines = render(main)
    for name, body in snaps:
        lines += [f"[{name}]", *render(body)]
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    cfg = parse_pve_config(text)
    assert cfg.render() == text
    for kind, key, value in main:
        if kind in ("opt", "lxc"):
            assert value in cfg.main.get_all(key)


@given(st.text(max_size=60))
def test_description_round_trip(text):
    text = text.replace("\r", "")
    sec = PveSection()
    sec.description = text
    for e in sec:
        assert ":" not in e.value and "\n" not in e.value
    again = parse_pve_config(PveConfig(sec).render() if text else "").main
    assert again.description == (text if text else "")


def test_description_encoding_matches_pve():
    assert encode_description_line("owner: ops") == "owner%3A ops"
    assert encode_description_line("Grüße 100%") == "Gr%C3%BC%C3%9Fe 100%25"


def _spec(**kw: Any) -> ContainerSpec:
    return build_spec(
        NGINX, RunOptions(name="web", host_env={}, **kw), image="docker.io/library/nginx:1.29"
    )


def test_render_full_spec_passes_schema():
    spec = _spec(
        volumes=("/srv/www:/usr/share/nginx/html:ro", "logs:/var/log/nginx"),
        memory="300m",
        cores="2",
        cpus="1.5",
        pids_limit="200",
        restart="unless-stopped",
        ip="10.20.0.9/24",
        gateway="10.20.0.1",
        mtu="1450",
        vlan="20",
        mac_address="bc:24:11:00:00:09",
        dns=("10.20.0.1",),
        dns_search=("home.arpa",),
        nesting=True,
        keyctl=True,
        cap_drop=("NET_RAW",),
    )
    cfg = render_pve_config(
        spec,
        205,
        storage="local-zfs",
        volume_ids={"logs": "local-zfs:subvol-205-disk-1"},
        state_dir="/var/lib/lxcri/containers/205",
        hookscript="local:snippets/lxcri-hook.pl",
    )
    params = cfg.api_params()
    assert validate_params(params) == []
    assert validate_params({k: v for k, v in params.items()}, "update") == []
    m = cfg.main
    assert m.get("memory") == "300" and m.get("swap") == "300"
    assert m.get("cores") == "2" and m.get("cpulimit") == "1.5"
    assert m.get("entrypoint") == "/.lxcri/init"
    assert m.get("features") == "keyctl=1,nesting=1"
    assert m.get("onboot") == "1" and m.get("unprivileged") == "1"
    assert m.get("net0") == (
        "name=eth0,bridge=vmbr0,gw=10.20.0.1,host-managed=1,hwaddr=BC:24:11:00:00:09,"
        "ip=10.20.0.9/24,mtu=1450,tag=20,type=veth"
    )
    mps = {
        parse_property_string(v, "volume")["mp"]: v
        for k, v in m.options().items()
        if k.startswith("mp")
    }
    assert mps["/usr/share/nginx/html"] == "/srv/www,mp=/usr/share/nginx/html,ro=1"
    assert mps["/var/log/nginx"] == "local-zfs:subvol-205-disk-1,mp=/var/log/nginx,backup=1"
    assert mps["/var/cache/nginx"] == "local-zfs:1,mp=/var/cache/nginx,backup=1"
    assert m.get("nameserver") == "10.20.0.1" and m.get("searchdomain") == "home.arpa"
    raw = dict(cfg.raw_lxc_entries())
    assert (
        raw["lxc.mount.entry"] == "/var/lib/lxcri/containers/205 .lxcri none bind,ro,create=dir 0 0"
    )
    assert raw["lxc.signal.halt"] == "SIGQUIT" and raw["lxc.cgroup2.pids.max"] == "200"
    assert "net_raw" in raw["lxc.cap.drop"].split() and "chown" not in raw["lxc.cap.drop"].split()
    assert params["env"].split("\0")[1] == "HOSTNAME=web"
    # the rendered file is itself a valid, round-tripping pct.conf
    text = cfg.render()
    assert parse_pve_config(text).render() == text
    assert text.startswith("#lxcri image docker.io/library/nginx%3A1.29\narch: amd64\n")


def test_render_inline_entrypoint_and_limits():
    spec = build_spec({"Cmd": ["/app", "--port=80"]}, RunOptions(network="none", host_env={}))
    cfg = render_pve_config(spec, 100)
    assert cfg.main.get("entrypoint") == "/app '--port=80'"  # cmd2string quotes any '='

    assert cfg.main.get("net0") is None and cfg.main.get("rootfs") == "local-lvm:8"
    assert validate_params(cfg.api_params()) == []
    # "daemon off;" has a space: written as PVE writes it (refused before)
    nginx = render_pve_config(_spec(), 100)
    assert nginx.main.get("entrypoint") == "/docker-entrypoint.sh nginx -g 'daemon off;'"
    assert validate_params(nginx.api_params()) == []
    with pytest.raises(SpecError, match="VMID 99"):
        render_pve_config(spec, 99)
    odd = build_spec({"Cmd": ["/app"]}, RunOptions(env=("my.var=1",), host_env={}))
    with pytest.raises(SpecError, match=r"'my\.var' cannot be stored"):
        render_pve_config(odd, 100)
    shim = render_pve_config(odd, 100, state_dir="/s")
    assert "my.var=1" not in shim.main.get_all("lxc.environment.runtime")


def test_validator_catches_bad_values():
    """The schema check itself can fail: wrong names, ranges, enums, patterns, sub-keys."""
    errs = validate_params(
        {
            "colour": "red",
            "ostype": "windows",
            "memory": "8",
            "net0": "name=eth0,tag=5000,speed=10",
            "mp0": "/x,ro=yes",
            "env": "1 BAD",
            "hostname": "bad_name",
        }
    )
    text = "\n".join(errs)
    for needle in (
        "colour: property is not defined in schema",
        "ostype: value 'windows' does not have a value in the enumeration",
        "memory: value must have a minimum value of 16",
        "net0.tag: value must have a maximum value of 4094",
        "net0.speed: property is not defined in schema",
        "mp0.mp: property is missing",
        "env: value does not match the regex pattern",
        "hostname: invalid format",
    ):
        assert needle in text, text
    # PVE's parse_boolean takes yes/no too
    assert validate_params({"mp0": "/x,mp=/data,ro=yes"}) == []
    assert "mp0.ro: type check ('boolean') failed" in "\n".join(
        validate_params({"mp0": "/x,mp=/data,ro=maybe"})
    )
    # what current PVE refuses beyond 9.1's schema patterns (\x0a-\x1f, not \x10-\x1f)
    more = "\n".join(validate_params({"env": "A=1\0B=x\x1b"}))
    assert "env: value does not match the regex pattern" in more


def test_schema_subset_is_the_generated_one():
    props = load_schema("create")
    assert {"entrypoint", "env", "net[n]", "mp[n]", "features", "unprivileged"} <= set(props)
    assert "host-managed" in props["net[n]"]["format"]


def _app(config: dict[str, Any], **kw: Any) -> ContainerSpec:
    return build_spec({"config": config}, RunOptions(name="app", host_env={}, **kw), image="app")


def test_image_user_becomes_lxc_init_ids():
    """PVE::LXC::Create::restore_oci_archive pushes lxc.init.uid, lxc.init.gid and (without
    a group in USER) lxc.init.groups; before, USER was dropped and the app ran as root."""
    spec = _app({"Cmd": ["/app"], "User": "1000:1000"}, group_add=("27", "44"))
    cfg = render_pve_config(spec, 130)
    raw = cfg.raw_lxc_entries()
    assert raw[:3] == [
        ("lxc.init.uid", "1000"),
        ("lxc.init.gid", "1000"),
        ("lxc.init.groups", "27,44"),
    ]
    # with the shim (and its SETUID/SETGID), the shim switches from ctr/user instead
    shim = render_pve_config(spec, 130, state_dir="/s")
    assert shim.main.get("lxc.init.uid") is None
    # without those capabilities the shim cannot: LXC switches before it runs
    nocap = _app({"Cmd": ["/app"], "User": "1000:1000"}, cap_drop=("SETUID",))
    assert render_pve_config(nocap, 130, state_dir="/s").main.get("lxc.init.uid") == "1000"
    root = render_pve_config(_app({"Cmd": ["/app"]}), 130)
    assert root.main.get("lxc.init.uid") is None


def test_env_lines_come_first_and_pve_s_control_chars_are_refused():
    """write_pct_config writes env (lxc.environment.runtime) before the other lxc keys;
    restore_oci_archive refuses [\\x00-\\x08\\x0A-\\x1F\\x7F] in a value."""
    spec = _app({"Cmd": ["/app"], "Env": ["A=1", "TABS=a\tb"], "StopSignal": "SIGINT"})
    cfg = render_pve_config(spec, 131, state_dir="/s")
    keys = [k for k, _ in cfg.main.lxc()]
    n_env = keys.count("lxc.environment.runtime")
    assert keys[:n_env] == ["lxc.environment.runtime"] * n_env
    assert "lxc.mount.entry" in keys[n_env:]
    assert keys[n_env:][:2] == ["lxc.init.cwd", "lxc.signal.halt"]
    assert "TABS=a\tb" in cfg.main.get_all("lxc.environment.runtime")
    assert validate_params(cfg.api_params()) == []
    for value in ("a\nb", "a\x1bb", "a\x7f", "a\rb", "trailing "):
        bad = _app({"Cmd": ["/app"], "Env": [f"EVIL={value}"]})
        with pytest.raises(SpecError, match="variable 'EVIL' cannot be stored"):
            render_pve_config(bad, 131)
        # with the shim the variable is set from ctr/env, never written to pct.conf
        text = render_pve_config(bad, 131, state_dir="/s").render()
        assert "EVIL" not in text
        assert parse_pve_config(text).render() == text


def test_no_ip6_auto_with_host_managed():
    """PVE::LXC::Config::update_pct_config and PVE::LXC::update_lxc_config die with "SLAAC
    is not supported for host-managed network configuration"; lxcri's NICs are host-managed."""
    with pytest.raises(SpecError, match="SLAAC"):
        render_pve_config(_app({"Cmd": ["/app"]}, ip6="auto"), 132)
    ok = render_pve_config(_app({"Cmd": ["/app"]}, ip6="fd00::5/64"), 132)
    assert "ip6=fd00::5/64" in (ok.main.get("net0") or "")
    assert validate_params(ok.api_params()) == []
    errs = validate_params({"net0": "name=eth0,bridge=vmbr0,host-managed=1,ip6=auto"})
    assert any("SLAAC" in e for e in errs)


def test_no_new_privileges_needs_the_shim():
    spec = _app({"Cmd": ["/app"]}, security_opts=("no-new-privileges",))
    with pytest.raises(SpecError, match="no-new-privileges"):
        render_pve_config(spec, 133)
    assert render_pve_config(spec, 133, state_dir="/s").main.get("entrypoint") == "/.lxcri/init"


def test_tags_and_hostile_values_in_property_strings():
    """tags: pve-tag-list; a default-key value with '=' (PVE's parse_property_string would
    take it as a key) and a state dir with a blank (fstab field) cannot break the config."""
    spec = _app({"Cmd": ["/app"]})
    cfg = render_pve_config(spec, 140, tags=("lxcri", "web-1"))
    assert cfg.main.get("tags") == "lxcri;web-1"
    assert render_pve_config(spec, 140).main.get("tags") == "lxcri"
    assert validate_params(cfg.api_params()) == []
    assert validate_params({"tags": "ok;bad tag!"}) != []
    with pytest.raises(SpecError, match="not a Proxmox tag"):
        render_pve_config(spec, 140, tags=("a;b",))
    with pytest.raises(SpecError, match="cannot contain '='"):
        render_pve_config(_app({"Cmd": ["/app"]}, volumes=("/srv/a=b:/data",)), 140)
    shim = render_pve_config(spec, 140, state_dir="/var/lib/my state")
    assert ("lxc.mount.entry", "/var/lib/my\\040state .lxcri none bind,ro,create=dir 0 0") in (
        shim.raw_lxc_entries()
    )
