"""``lxcri exec`` with real containers: user by name, groups, working directory, -e, -t,
exit status, and a hostile container's /etc/passwd."""

from __future__ import annotations

import os

import pytest

from lxcri_core.containers import engine
from tests.containers.conftest import Lxcri
from tests.containers.test_flags import GROUPS_REF, groups_image
from tests.support.lxcenv import BUSYBOX_REF, PROBE_REF, LxcEnv

pytestmark = pytest.mark.slow


def test_exec_starts_in_the_containers_working_directory(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("wd", args=("sleep 60",), workdir="/tmp")
    p = lxcri("exec", "wd", "pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "/tmp"  # was /
    p = lxcri("exec", "-w", "/bin", "wd", "pwd")
    assert p.stdout.strip() == "/bin"
    p = lxcri("exec", "-w", "/no/such/dir", "wd", "pwd")
    assert p.returncode == 126 and "chdir /no/such/dir" in p.stderr
    p = lxcri("exec", "-w", "relative", "wd", "pwd")
    assert p.returncode == 1 and "must be absolute" in p.stderr


def test_exec_user_by_name_with_groups(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_image(groups_image(), GROUPS_REF)
    lxenv.start("grp", GROUPS_REF, args=("sleep 60",), user="0")
    p = lxcri("exec", "-u", "www", "grp", "sh", "-c", "id -u; id -g; id -G")
    assert p.returncode == 0, p.stderr
    uid, gid, gids = p.stdout.splitlines()
    assert (uid, gid) == ("33", "33")
    assert sorted(gids.split(), key=int) == ["29", "33", "50"]
    p = lxcri("exec", "-u", "nobody:staff", "grp", "sh", "-c", "id -u; id -g")
    assert p.stdout.split() == ["65534", "50"], p.stderr
    p = lxcri("exec", "-u", "nosuch", "grp", "id")
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "lxcri: error: user 'nosuch' cannot be resolved: not in /etc/passwd; "
        "use a numeric UID[:GID]"
    ]


def test_exec_runs_as_the_containers_user_by_default(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_image(groups_image(), GROUPS_REF)
    lxenv.start("dflt", GROUPS_REF, args=("sleep 60",), group_add=("7",))
    p = lxcri("exec", "dflt", "sh", "-c", "id -u; id -G")
    assert p.returncode == 0, p.stderr
    uid, gids = p.stdout.splitlines()
    assert uid == "33" and sorted(gids.split(), key=int) == ["7", "29", "33", "50"]
    # another user gets its own groups plus the container's --group-add, as docker does
    p = lxcri("exec", "-u", "nobody", "dflt", "id", "-G")
    assert sorted(p.stdout.split(), key=int) == ["7", "29", "65534"], p.stderr


def test_exec_env_tty_and_exit_status(
    lxcri: Lxcri, lxenv: LxcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROMHOST", "fh")
    lxenv.start("env", args=("sleep 60",), env=("FOO=bar", "SP= x "))
    p = lxcri("exec", "-e", "NEW=a b", "-e", "FROMHOST", "-t", "env", "sh", "-c", "env | sort")
    assert p.returncode == 0, p.stderr
    env = p.stdout.splitlines()
    assert {"FOO=bar", "SP= x ", "NEW=a b", "TERM=xterm", "FROMHOST=fh"} <= set(env)
    assert not any(e.startswith(("container=", "LXCRI_ENV_")) for e in env)
    p = lxcri("exec", "env", "sh", "-c", "echo ${TERM:-none}")
    assert p.stdout.strip() == "none"
    assert lxcri("exec", "env", "sh", "-c", "exit 42").returncode == 42
    assert lxcri("exec", "env", "sh", "-c", "kill -9 $$").returncode == 137
    p = lxcri("exec", "env", "no-such-command")
    assert p.returncode == 127 and "executable file not found" in p.stderr
    assert lxcri("exec", "env", "/etc").returncode == 126


def test_exec_without_setuid_capability_still_switches_user(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("nocap", args=("sleep 60",), cap_drop=("ALL",))
    p = lxcri("exec", "-u", "www", "nocap", "sh", "-c", "id -u; pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33", "/"]


def test_exec_env_values_stay_off_command_lines_and_out_of_the_hosts_loader(
    lxenv: LxcEnv,
) -> None:
    """An image's LD_PRELOAD must not reach the host's lxc-attach; -e values are not in argv
    (any local user reads /proc/PID/cmdline)."""
    lxenv.start("sec", args=("sleep 60",), env=("LD_PRELOAD=/evil.so", "TOKEN=s3cret"))
    cmd = engine.exec_argv(lxenv.config(), "sec", ["true"], env=("PW=hunter2",))
    line = "\0".join(cmd.argv)
    assert "s3cret" not in line and "hunter2" not in line and "/evil.so" not in line
    assert "LD_PRELOAD" not in cmd.env and "TOKEN" not in cmd.env
    assert "LD_PRELOAD=/evil.so" in cmd.env.values()


def test_hostile_container_passwd_link_is_not_followed_on_the_host(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    """A container replaces /etc/passwd with a link to a host file; exec -u NAME must not
    resolve names from the host."""
    host_file = lxenv.root / "host-passwd"
    host_file.write_text("hostonly:x:4242:4242::/:/bin/sh\n")
    os.chmod(lxenv.root, 0o755)
    lxenv.start("evil", args=("sleep 60",))
    p = lxcri("exec", "evil", "sh", "-c", f"ln -sf {host_file} /etc/passwd")
    assert p.returncode == 0, p.stderr
    p = lxcri("exec", "-u", "hostonly", "evil", "id", "-u")
    assert p.returncode == 1 and "cannot be resolved" in p.stderr
    assert "4242" not in p.stdout


def test_probe_image_exec_keeps_run_behaviour(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("pr", PROBE_REF, entrypoint="/bin/sh", args=("-c", "sleep 60"))
    p = lxcri("exec", "pr", "sh", "-c", "pwd; id -u; echo $HOME")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["/www", "33", "/www"]
    assert lxcri("exec", "-u", "0", "pr", "id", "-u").stdout.strip() == "0"


def test_run_t_sets_term(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "-t", BUSYBOX_REF, "echo ${TERM:-none}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "xterm"
    assert lxcri("run", "--rm", BUSYBOX_REF, "echo ${TERM:-none}").stdout.strip() == "none"
