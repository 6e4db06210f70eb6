"""Option parsers: docker's syntax, and every bad value names its flag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.errors import SpecError
from lxcri_core.spec import options as o
from lxcri_core.spec.model import Mount, PortMapping, RestartPolicy


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/srv/www:/usr/share/html:ro", Mount("/usr/share/html", "/srv/www", "bind", True)),
        ("/srv/www:/html", Mount("/html", "/srv/www", "bind", False)),
        ("/srv/www:/html:rw", Mount("/html", "/srv/www", "bind", False)),
        ("pgdata:/var/lib/postgresql/data", Mount("/var/lib/postgresql/data", "pgdata", "volume")),
        ("cache.v1:/cache:ro", Mount("/cache", "cache.v1", "volume", True)),
        ("/data", Mount("/data", "", "anonymous")),
        ("/data:ro", Mount("/data", "", "anonymous", True)),
        ("/a//b/:/c/./d", Mount("/c/d", "/a//b/", "bind")),
    ],
)
def test_volume(value, expected):
    assert o.parse_volume(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "a:b:c:d", "/x:rel", "/x:/y:rx", "-bad:/x", "/x:/y/../z", "/a/../b:/x", "x::/y"],
)
def test_volume_errors_name_flag(value):
    with pytest.raises(SpecError, match=r"-v value"):
        o.parse_volume(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8080:80", [PortMapping(80, 8080)]),
        ("80", [PortMapping(80, 0)]),
        ("53:53/udp", [PortMapping(53, 53, "udp")]),
        ("127.0.0.1:8080:80", [PortMapping(80, 8080, "tcp", "127.0.0.1")]),
        ("127.0.0.1::80", [PortMapping(80, 0, "tcp", "127.0.0.1")]),
        ("[::1]:8443:443/tcp", [PortMapping(443, 8443, "tcp", "::1")]),
        ("8000-8001:80-81", [PortMapping(80, 8000), PortMapping(81, 8001)]),
    ],
)
def test_port(value, expected):
    assert o.parse_port(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "80/sctp",
        "x:80",
        "70000:80",
        "8080:0",
        "1.2.3:80:80",
        "80-81:90",
        "[::1:80:80",
        "a:b:c:d",
    ],
)
def test_port_errors(value):
    with pytest.raises(SpecError, match=r"-p value"):
        o.parse_port(value)


@given(
    host=st.integers(1, 65535),
    ctr=st.integers(1, 65535),
    proto=st.sampled_from(["tcp", "udp"]),
    ip=st.sampled_from(["", "127.0.0.1", "10.1.2.3", "::1"]),
)
def test_port_roundtrip(host, ctr, proto, ip):
    text = f"{host}:{ctr}/{proto}"
    if ip:
        text = (f"[{ip}]" if ":" in ip else ip) + ":" + text
    assert o.parse_port(text) == [PortMapping(ctr, host, proto, ip)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("1.5GiB", 3 << 29),
        ("2gb", 2 << 30),
        ("104857600", 100 << 20),
        ("65536k", 64 << 20),
    ],
)
def test_memory(value, expected):
    assert o.parse_memory(value) == expected


@pytest.mark.parametrize("value", ["", "lots", "1x", "-5m", "5m", "1000"])
def test_memory_errors(value):
    with pytest.raises(SpecError, match=r"--memory value"):
        o.parse_memory(value)


@given(n=st.integers(6, 1 << 20), unit=st.sampled_from(["m", "M", "mb", "MiB"]))
def test_memory_units(n, unit):
    assert o.parse_memory(f"{n}{unit}") == n << 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no", RestartPolicy("no")),
        ("always", RestartPolicy("always")),
        ("unless-stopped", RestartPolicy("unless-stopped")),
        ("on-failure", RestartPolicy("on-failure", 0)),
        ("on-failure:5", RestartPolicy("on-failure", 5)),
    ],
)
def test_restart(value, expected):
    policy = o.parse_restart(value)
    assert policy == expected
    assert str(policy) == value


@pytest.mark.parametrize("value", ["", "sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_restart_errors(value):
    with pytest.raises(SpecError, match=r"--restart value"):
        o.parse_restart(value)


def test_cores_cpus_pids():
    assert o.parse_cores("4") == 4
    assert o.parse_cpus("1.5") == 1.5
    assert o.parse_pids_limit("100") == 100
    assert o.parse_pids_limit("0") is None and o.parse_pids_limit("-1") is None
    for fn, bad, flag in [
        (o.parse_cores, "0", "--cores"),
        (o.parse_cores, "two", "--cores"),
        (o.parse_cpus, "0", "--cpus"),
        (o.parse_pids_limit, "-2", "--pids-limit"),
    ]:
        with pytest.raises(SpecError, match=flag):
            fn(bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0), ("1.5s", 1.5)],
)
def test_duration(value, seconds):
    assert o.parse_duration(value, "--health-interval") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "30", "s", "1x", "1m 30s", "-1s"])
def test_duration_errors(value):
    with pytest.raises(SpecError, match="--health-interval"):
        o.parse_duration(value, "--health-interval")


@pytest.mark.parametrize(
    ("value", "name"),
    [("TERM", "SIGTERM"), ("sigquit", "SIGQUIT"), ("9", "SIGKILL"), ("SIGUSR1", "SIGUSR1")],
)
def test_signal(value, name):
    assert o.parse_signal(value) == name


@pytest.mark.parametrize("value", ["", "NOPE", "999"])
def test_signal_errors(value):
    with pytest.raises(SpecError, match="--stop-signal"):
        o.parse_signal(value)


def test_env_and_env_file():
    host = {"FROM_HOST": "h v"}
    assert o.parse_env("A=1=2", host) == "A=1=2"
    assert o.parse_env("A=", host) == "A="
    assert o.parse_env("FROM_HOST", host) == "FROM_HOST=h v"
    assert o.parse_env("MISSING", host) is None
    with pytest.raises(SpecError, match=r"-e value '=x'"):
        o.parse_env("=x", host)
    text = '# comment\n\n  A=1\nB="quoted" \nFROM_HOST\nMISSING\nC=a=b\n'
    assert o.parse_env_file(text, host, "--env-file x.env") == [
        "A=1",
        'B="quoted" ',
        "FROM_HOST=h v",
        "C=a=b",
    ]
    with pytest.raises(SpecError, match=r"--env-file x.env line 2"):
        o.parse_env_file("A=1\nBAD NAME=2\n", host, "--env-file x.env")


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
        ),
        max_size=8,
    )
)
def test_env_file_roundtrip(pairs):
    text = "".join(f"{k}={v}\n" for k, v in pairs)
    assert o.parse_env_file(text, {}) == [f"{k}={v}" for k, v in pairs]


def test_capabilities():
    base = ("CHOWN", "NET_RAW", "KILL")
    assert o.apply_capabilities(base, ("net_admin",), ("CAP_NET_RAW",)) == (
        "CHOWN",
        "KILL",
        "NET_ADMIN",
    )
    assert o.apply_capabilities(base, ("ALL",), ()) is None
    assert o.apply_capabilities(base, ("SYS_TIME",), ("ALL",)) == ("SYS_TIME",)
    everything_but = o.apply_capabilities(base, ("ALL",), ("SYS_ADMIN",))
    assert everything_but is not None and "SYS_ADMIN" not in everything_but
    assert "NET_ADMIN" in everything_but
    with pytest.raises(SpecError, match=r"--cap-add value 'FLY'"):
        o.apply_capabilities(base, ("FLY",), ())


def test_user_and_security_opts():
    assert o.parse_user("1000:1000") == ("1000", "1000")
    assert o.parse_user("www-data") == ("www-data", "")
    for bad in ("", ":1", "a:", "a:b:c"):
        with pytest.raises(SpecError, match="--user"):
            o.parse_user(bad)
    assert o.parse_security_opt("seccomp=unconfined") == ("seccomp", "unconfined")
    assert o.parse_security_opt("seccomp:/etc/x.seccomp") == ("seccomp", "/etc/x.seccomp")
    assert o.parse_security_opt("no-new-privileges") == ("no-new-privileges", "true")
    assert o.parse_security_opt("no-new-privileges:false") == ("no-new-privileges", "false")
    for bad in ("apparmor=x y", "no-new-privileges=maybe", "seccomp=", "selinux=x"):
        with pytest.raises(SpecError, match="--security-opt"):
            o.parse_security_opt(bad)


def test_network_values():
    assert o.parse_ipv4_config("10.0.0.5/24") == "10.0.0.5/24"
    assert o.parse_ipv4_config("dhcp") == "dhcp"
    assert o.parse_ipv6_config("auto") == "auto"
    assert o.parse_mac("bc:24:11:00:00:01") == "BC:24:11:00:00:01"
    assert o.parse_add_host("db:10.0.0.9") == ("db", "10.0.0.9")
    assert o.parse_add_host("v6=[fd00::1]") == ("v6", "fd00::1")
    assert o.parse_hostname("web-1.example.lan") == "web-1.example.lan"
    cases = [
        (o.parse_ipv4_config, "10.0.0.5", "--ip"),
        (o.parse_ipv4_config, "10.0.0.300/24", "--ip"),
        (o.parse_mac, "01:00:5e:00:00:01", "--mac-address"),
        (o.parse_mac, "zz:00:00:00:00:00", "--mac-address"),
        (o.parse_add_host, "db:nothing", "--add-host"),
        (o.parse_hostname, "-bad-", "--hostname"),
        (o.parse_bridge, "vmbr 0", "--bridge"),
    ]
    for fn, bad, flag in cases:
        with pytest.raises(SpecError, match=flag):
            fn(bad)


@pytest.mark.parametrize(
    "hostile",
    [
        "evil\n6.6.6.6 registry.example:10.0.0.9",  # a second hosts line in the name
        "db\n:10.0.0.9",  # a trailing newline ($ would let it through)
        "db 6.6.6.6:10.0.0.9",
        "db\t#x:10.0.0.9",
        "db#comment:10.0.0.9",
        "-db:10.0.0.9",
        "db-:10.0.0.9",
        "a..b:10.0.0.9",
        "db_1:10.0.0.9",
        ":10.0.0.9",
        "x" * 64 + ":10.0.0.9",
        ("a." * 127) + "b:10.0.0.9",
        "db:10.0.0.9\n6.6.6.6 evil",
        "db:fe80::1%eth0\n6.6.6.6 registry.example",  # ipaddress takes any zone text
        "db:fe80::1%a b",
        "db=[fe80::1%x#y]",
        "db:host-gateway",
    ],
)
def test_add_host_refuses_what_would_inject_hosts_lines(hostile):
    with pytest.raises(SpecError, match="--add-host") as e:
        o.parse_add_host(hostile)
    assert "\n" not in str(e.value)  # one line: the value is shown quoted


def test_add_host_accepts_names_and_writes_the_parsed_address():
    assert o.parse_add_host("db.internal:10.0.0.9") == ("db.internal", "10.0.0.9")
    assert o.parse_add_host("DB-1=[FD00::0001]") == ("DB-1", "fd00::1")
    assert o.parse_add_host("ll:fe80::1%eth0") == ("ll", "fe80::1%eth0")
    assert o.parse_add_host("a" * 63 + ":1.2.3.4")[0] == "a" * 63


@pytest.mark.parametrize("flag", ["--hostname", "--domainname"])
def test_hostname_refuses_a_trailing_newline(flag):
    with pytest.raises(SpecError, match=flag):
        o.parse_hostname("web\n", flag)


@pytest.mark.parametrize(
    ("fn", "value", "flag"),
    [
        (o.parse_gateway, "fe80::1%x\nlxc.hook.pre-start = evil", "--gateway"),
        (o.parse_ipv6_config, "fd00::5%x\nlxc.init.cmd=evil/64", "--ip6"),
        (o.parse_ipv6_config, "fd00::5%eth0/64", "--ip6"),
        (o.parse_port, "[fe80::1%x y]:80:80", "-p"),
        (o.parse_port, "[fe80::1%eth0]:80:80", "-p"),
    ],
)
def test_ipv6_zones_cannot_carry_text(fn, value, flag):
    """Python's ipaddress takes any text after '%': it must not reach a config line."""
    with pytest.raises(SpecError, match=flag) as e:
        fn(value) if fn is not o.parse_gateway else fn(value, flag, 6)
    assert "\n" not in str(e.value)
