"""``run``/``create`` flags with real containers: supplementary groups, --tmpfs, --mount,
--read-only, --ulimit, --device, -P and --init."""

from __future__ import annotations

import pytest

from tests.containers.conftest import Lxcri
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow

GROUPS_REF = "localhost/lxt-groups:latest"


def groups_image() -> Image:
    """busybox running as ``www``, a member of staff (50) and audio (29) in /etc/group."""
    img = busybox_image(User="www")
    group = b"root:x:0:\nwww:x:33:\naudio:x:29:nobody,www\nstaff:x:50:www\nnogroup:x:65534:\n"
    img.layers.append(Layer(make_tar([Entry("etc/group", data=group)])))
    return img


def test_group_add_gives_the_process_supplementary_groups(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "-u",
        "33",
        "--group-add",
        "65534",
        "--group-add",
        "7",
        BUSYBOX_REF,
        "id -G; grep ^Groups: /proc/self/status",
    )
    assert p.returncode == 0, p.stderr
    first, status = p.stdout.splitlines()
    assert first.split() == ["33", "7", "65534"]
    assert status.split()[1:] == ["7", "65534"]


def test_group_add_by_name_and_the_users_own_groups(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_image(groups_image(), GROUPS_REF)
    p = lxcri("run", "--rm", "--group-add", "nogroup", GROUPS_REF, "id -u; id -G")
    assert p.returncode == 0, p.stderr
    uid, gids = p.stdout.splitlines()
    # the image USER's memberships from /etc/group, as docker gives them, plus --group-add
    assert uid == "33" and sorted(gids.split(), key=int) == ["29", "33", "50", "65534"]


def test_no_groups_without_group_add(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "-u", "33:33", BUSYBOX_REF, "id -G")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33"]


def test_group_add_with_setgid_dropped_is_refused(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--name",
        "g",
        "--cap-drop",
        "SETGID",
        "-u",
        "33",
        "--group-add",
        "7",
        BUSYBOX_REF,
        "id -G",
    )
    assert p.returncode == 1
    assert "--group-add needs the SETUID and SETGID" in p.stderr
    assert not lxenv.state_dir("g").exists()


def test_cap_drop_all_with_a_user_still_runs_as_that_user(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--cap-drop", "ALL", "-u", "33:33", BUSYBOX_REF, "id -u; id -g")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33", "33"]


def test_tmpfs_is_mounted_with_its_size_and_docker_flags(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--tmpfs",
        "/scratch:size=8m,mode=1770",
        "--mount",
        "type=tmpfs,target=/m,tmpfs-size=1m",
        BUSYBOX_REF,
        "grep -E ' /(scratch|m) ' /proc/mounts; stat -c %a /scratch; "
        "dd if=/dev/zero of=/m/big bs=1024 count=2048 2>/dev/null; echo dd=$?",
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    scratch = next(line for line in lines if " /scratch " in line).split()[3].split(",")
    assert {"nosuid", "nodev", "noexec", "size=8192k", "mode=1770"} <= set(scratch)
    m = next(line for line in lines if " /m " in line).split()[3].split(",")
    assert "size=1024k" in m
    assert "1770" in lines and "dd=1" in lines  # 2 MiB do not fit in 1 MiB


def test_read_only_rootfs(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        "/data",
        BUSYBOX_REF,
        "touch /x; echo root=$?; touch /etc/y; echo etc=$?; touch /tmp/ok; echo tmp=$?; "
        "touch /data/ok; echo vol=$?",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["root=1", "etc=1", "tmp=0", "vol=0"]
    assert "Read-only file system" in p.stderr
    # /tmp is not writable by magic: only a --tmpfs makes it so, as with docker
    p = lxcri("run", "--rm", "--read-only", BUSYBOX_REF, "touch /tmp/x")
    assert p.returncode == 1 and "Read-only file system" in p.stderr


def test_ulimit_reaches_the_process(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "core=0",
        BUSYBOX_REF,
        "grep -E 'open files|core file' /proc/self/limits",
    )
    assert p.returncode == 0, p.stderr
    rows = {line[:25].strip(): line[25:].split()[:2] for line in p.stdout.splitlines()}
    assert rows["Max open files"] == ["1024", "2048"]
    assert rows["Max core file size"] == ["0", "0"]


def test_device_node_is_usable(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--device",
        "/dev/zero:/dev/myzero",
        BUSYBOX_REF,
        "head -c 5 /dev/myzero | wc -c",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "5"


def test_privileged_device_gets_its_cgroup_rule(lxcri: Lxcri) -> None:
    # /dev/fuse (10:229) is not in the default allow list: only the rule lets it through,
    # and only for what the permissions say (r: open for reading, not for writing)
    p = lxcri(
        "run",
        "--rm",
        "--privileged",
        "--device",
        "/dev/fuse:/dev/myfuse:r",
        BUSYBOX_REF,
        "(exec 3</dev/myfuse) && echo r=ok; (exec 3>/dev/myfuse) || echo w=denied",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["r=ok", "w=denied"]
    assert "Operation not permitted" in p.stderr


@pytest.fixture
def dev_traps():
    """A symlink and a regular file planted in the host's /dev (as an attacker with a foothold
    in /dev, or a mistaken path, would present them)."""
    import os
    import secrets

    tag = secrets.token_hex(4)
    link, plain = f"/dev/lxcri-t-{tag}-link", f"/dev/lxcri-t-{tag}-file"
    os.symlink("/dev/zero", link)
    with open(plain, "w") as f:
        f.write("not a device\n")
    try:
        yield link, plain
    finally:
        os.unlink(link)
        os.unlink(plain)


def test_device_refuses_links_files_and_paths_outside_dev(
    lxcri: Lxcri, lxenv: LxcEnv, dev_traps: tuple[str, str]
) -> None:
    link, plain = dev_traps
    cases = [
        (link, "a symbolic link is on the way"),
        (plain, "not a device node"),
        ("/dev/no-such-node", "No such file"),
        ("/etc/passwd", "must be a path below /dev/"),
        ("/dev/../etc/shadow", "must be a path below /dev/"),
        ("/dev/zero:/etc/zero", "must be a path below /dev/"),
    ]
    for value, message in cases:
        p = lxcri("create", "--name", "dev", "--device", value, BUSYBOX_REF)
        assert p.returncode == 1, value
        assert len(p.stderr.strip().splitlines()) == 1 and message in p.stderr, p.stderr
        assert not lxenv.state_dir("dev").exists()


def test_publish_all_publishes_exposed_ports_reachably(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    from lxcri_core.containers import engine
    from tests.containers.test_run import _try_get
    from tests.support.lxcenv import DEMO_REF, wait_for

    lxenv.add_demo()
    p = lxcri("run", "-d", "--name", "pall", "-P", "--init", DEMO_REF)
    assert p.returncode == 0, p.stderr
    lxenv.remember("pall")
    (port,) = engine.status(lxenv.config(), "pall").ports
    host_port = port.host_port
    assert (port.container_port, port.protocol) == (80, "tcp") and host_port > 0
    assert "lxcri demo" in wait_for(lambda: _try_get(host_port), what="httpd through -P")


def test_mount_bind_read_only_and_named_volume(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    src = lxenv.root / "bindsrc"
    src.mkdir()
    (src / "f").write_text("hello\n")
    p = lxcri(
        "run",
        "--rm",
        "--mount",
        f"type=bind,source={src},target=/b,readonly",
        "--mount",
        "type=volume,source=mvol,target=/v",
        BUSYBOX_REF,
        "cat /b/f; touch /b/x; echo b=$?; touch /v/x; echo v=$?",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["hello", "b=1", "v=0"]
    p = lxcri(
        "create", "--name", "m", "--mount", f"type=bind,source={src}/no,target=/b", BUSYBOX_REF
    )
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        f"lxcri: error: --mount type=bind,source={src}/no,target=/b: bind source path does not "
        f"exist: {src}/no"
    ]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--tmpfs", "/x:suid"),
        ("--ulimit", "nofile=2:1"),
        ("--mount", "type=nfs,target=/x"),
        ("--device", "/dev/pts/0"),
        ("--ulimit", "nofile=1024:99999999"),
        ("--ulimit", "nofile=-1"),
    ],
)
def test_bad_flags_give_one_line_and_exit_1(lxcri: Lxcri, lxenv: LxcEnv, flag, value) -> None:
    p = lxcri("create", "--name", "bad", flag, value, BUSYBOX_REF)
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "invalid" in p.stderr or "fs.nr_open" in p.stderr, p.stderr
    assert not lxenv.state_dir("bad").exists()
