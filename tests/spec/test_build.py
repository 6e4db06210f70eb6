"""build_spec: docker's entrypoint/cmd table, env order, user, volumes, limits."""

from __future__ import annotations

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.spec.build import build_spec, merge_env, resolve_command
from lxcri_core.spec.model import DEFAULT_PATH, Healthcheck, Mount, PortMapping, User
from lxcri_core.spec.options import RunOptions

E, C = ("/entry.sh",), ("serve", "--port", "80")

# image ENTRYPOINT x image CMD x --entrypoint x args -> argv (docker's documented behaviour)
TABLE = [
    # no flags: ENTRYPOINT + CMD
    ((), C, None, (), C),
    (E, (), None, (), E),
    (E, C, None, (), E + C),
    # args replace CMD only
    ((), C, None, ("sh", "-c", "echo hi"), ("sh", "-c", "echo hi")),
    (E, C, None, ("debug",), (*E, "debug")),
    (E, (), None, ("a b",), (*E, "a b")),
    # --entrypoint replaces ENTRYPOINT and resets the image CMD
    (E, C, "/bin/sh", (), ("/bin/sh",)),
    ((), C, "/bin/sh", (), ("/bin/sh",)),
    (E, C, "/bin/sh", ("-c", "ls"), ("/bin/sh", "-c", "ls")),
    # --entrypoint "" clears ENTRYPOINT (and CMD): args are the whole argv
    (E, C, "", ("/bin/true",), ("/bin/true",)),
]


@pytest.mark.parametrize(("img_ep", "img_cmd", "flag", "args", "argv"), TABLE)
def test_entrypoint_cmd_table(img_ep, img_cmd, flag, args, argv):
    ep, cmd = resolve_command(img_ep, img_cmd, flag, args)
    assert ep + cmd == argv
    img = {"config": {"Entrypoint": list(img_ep) or None, "Cmd": list(img_cmd) or None}}
    spec = build_spec(img, RunOptions(entrypoint=flag, args=args, host_env={}))
    assert spec.args == argv
    assert spec.entrypoint == ep and spec.cmd == cmd


@pytest.mark.parametrize(
    ("img", "flag", "args"),
    [({}, None, ()), ({"Entrypoint": ["/e"], "Cmd": ["x"]}, "", ()), ({"Cmd": []}, None, ())],
)
def test_no_command_is_an_error(img, flag, args):
    with pytest.raises(SpecError, match="no command to run for img"):
        build_spec({"config": img}, RunOptions(entrypoint=flag, args=args), image="img")


def test_string_cmd_is_wrapped_in_a_shell():
    spec = build_spec({"Cmd": "echo hi"}, RunOptions(host_env={}))
    assert spec.args == ("/bin/sh", "-c", "echo hi")


def test_env_order_and_precedence(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("# settings\nA=file\nB=file\nFROM_HOST\n")
    img = {"config": {"Cmd": ["x"], "Env": ["PATH=/opt/bin", "A=image", "Z=image"]}}
    opts = RunOptions(
        name="web",
        env=("B=flag", "C=flag"),
        env_files=(env_file,),
        host_env={"FROM_HOST": "yes"},
        tty=True,
    )
    spec = build_spec(img, opts)
    assert spec.env == (
        "PATH=/opt/bin",
        "HOSTNAME=web",
        "TERM=xterm",
        "A=file",
        "Z=image",
        "B=flag",
        "FROM_HOST=yes",
        "C=flag",
        "HOME=/",
    )
    assert spec.env_dict()["B"] == "flag"
    bare = build_spec({"Cmd": ["x"]}, RunOptions(host_env={}))
    assert bare.env[0] == f"PATH={DEFAULT_PATH}"


def test_env_file_missing_names_flag(tmp_path):
    with pytest.raises(SpecError, match=r"--env-file .*nope.env"):
        build_spec({"Cmd": ["x"]}, RunOptions(env_files=(tmp_path / "nope.env",)))


def test_merge_env_keeps_first_position():
    assert merge_env(["A=1", "B=2"], ["A=3"]) == ("A=3", "B=2")


def test_user_from_rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nnginx:x:101:101::/var/cache/nginx:/bin/false\n"
    )
    (tmp_path / "etc" / "group").write_text("root:x:0:\nnginx:x:101:\nwww:x:33:nginx\n")
    img = {"config": {"Cmd": ["nginx"], "User": "nginx"}}
    spec = build_spec(img, RunOptions(host_env={}), tmp_path)
    assert spec.user == User(101, 101, (33,), "nginx", "/var/cache/nginx")
    assert "HOME=/var/cache/nginx" in spec.env
    spec = build_spec(img, RunOptions(user="0:0", host_env={}), tmp_path)
    assert (spec.user.uid, spec.user.gid) == (0, 0)
    with pytest.raises(SpecError, match="'nginx' cannot be resolved"):
        build_spec(img, RunOptions(host_env={}), None)


def test_volumes_ports_labels_and_limits():
    img = {
        "config": {
            "Cmd": ["x"],
            "Volumes": {"/data": {}, "/logs": {}},
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Labels": {"a": "image", "b": "image"},
            "StopSignal": "SIGQUIT",
            "WorkingDir": "/srv",
        }
    }
    opts = RunOptions(
        volumes=("appdata:/data",),
        publish=("8080:80", "127.0.0.1:5353:53/udp"),
        labels=("b=flag", "c"),
        memory="256m",
        cores="2",
        cpus="0.5",
        pids_limit="64",
        restart="on-failure:3",
        host_env={},
    )
    spec = build_spec(img, opts)
    assert spec.mounts == (Mount("/data", "appdata", "volume"), Mount("/logs", "", "anonymous"))
    assert spec.ports == (PortMapping(80, 8080), PortMapping(53, 5353, "udp", "127.0.0.1"))
    assert spec.exposed_ports == ("53/udp", "80/tcp")
    assert spec.labels == {"a": "image", "b": "flag", "c": ""}
    assert spec.stop_signal == "SIGQUIT" and spec.working_dir == "/srv"
    r = spec.resources
    assert (r.memory, r.cores, r.cpus, r.pids_limit) == (256 << 20, 2, 0.5, 64)
    assert str(spec.restart) == "on-failure:3"
    with pytest.raises(SpecError, match="two volumes are mounted at /x"):
        build_spec(img, RunOptions(volumes=("/a:/x", "b:/x"), host_env={}))
    with pytest.raises(SpecError, match="--workdir"):
        build_spec(img, RunOptions(workdir="rel", host_env={}))


def test_healthcheck_image_and_flags():
    img = {
        "config": {
            "Cmd": ["x"],
            "Healthcheck": {
                "Test": ["CMD", "curl", "-f", "http://localhost/"],
                "Interval": 10_000_000_000,
                "Retries": 5,
            },
        }
    }
    spec = build_spec(img, RunOptions(host_env={}))
    assert spec.healthcheck == Healthcheck(
        ("CMD", "curl", "-f", "http://localhost/"), 10.0, 30.0, 0.0, 5
    )
    assert spec.healthcheck.argv == ("curl", "-f", "http://localhost/")
    spec = build_spec(img, RunOptions(health_cmd="pg_isready", health_timeout="3s", host_env={}))
    assert spec.healthcheck is not None
    assert spec.healthcheck.argv == ("/bin/sh", "-c", "pg_isready")
    assert spec.healthcheck.timeout == 3.0 and spec.healthcheck.interval == 10.0
    assert build_spec(img, RunOptions(no_healthcheck=True, host_env={})).healthcheck is None
    none = {"config": {"Cmd": ["x"], "Healthcheck": {"Test": ["NONE"]}}}
    assert build_spec(none, RunOptions(host_env={})).healthcheck is None


def test_network_and_security():
    opts = RunOptions(
        bridge="vmbr1",
        ip="10.0.0.5/24",
        gateway="10.0.0.1",
        mtu="1400",
        vlan="20",
        dns=("1.1.1.1",),
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        security_opts=("no-new-privileges",),
        nesting=True,
        host_env={},
    )
    spec = build_spec({"Cmd": ["x"]}, opts)
    n = spec.network
    assert (n.bridge, n.ip, n.gateway, n.mtu, n.vlan, n.dns) == (
        "vmbr1",
        "10.0.0.5/24",
        "10.0.0.1",
        1400,
        20,
        ("1.1.1.1",),
    )
    s = spec.security
    assert s.unprivileged and s.nesting and s.no_new_privileges
    assert s.capabilities is not None
    assert "NET_ADMIN" in s.capabilities and "MKNOD" not in s.capabilities
    assert s.idmaps[0].host == 100000 and s.idmaps[0].count == 65536
    with pytest.raises(SpecError, match="not in the network"):
        build_spec({"Cmd": ["x"]}, RunOptions(ip="10.0.0.5/24", gateway="10.9.0.1", host_env={}))
    with pytest.raises(SpecError, match="--mtu"):
        build_spec({"Cmd": ["x"]}, RunOptions(mtu="9", host_env={}))
    priv = build_spec({"Cmd": ["x"]}, RunOptions(privileged=True, host_env={})).security
    assert priv.privileged and priv.idmaps == () and priv.capabilities is None


def test_hostname_defaults_from_name():
    assert (
        build_spec({"Cmd": ["x"]}, RunOptions(name="my_app.1", host_env={})).hostname == "my-app-1"
    )
    assert build_spec({"Cmd": ["x"]}, RunOptions(host_env={})).hostname == "lxcri"
    with pytest.raises(SpecError, match="--hostname"):
        build_spec({"Cmd": ["x"]}, RunOptions(hostname="bad_name", host_env={}))
