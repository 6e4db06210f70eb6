"""The static exec shim (hooks/lxcri-init) run directly on the host: ids from ctr/user,
exec mode's environment, and that a bad or unreadable user file never means "stay root"."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lxcri_core.containers.paths import libexec

SHIM = libexec("lxcri-init")
ID = "/usr/bin/id"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching ids needs root")


def _nul(*items: str) -> bytes:
    return b"".join(i.encode() + b"\0" for i in items)


def _dir(tmp_path: Path, user: bytes | None, *argv: str) -> Path:
    d = tmp_path / "ctr"
    d.mkdir()
    (d / "argv").write_bytes(_nul(*argv))
    (d / "env").write_bytes(_nul("PATH=/usr/bin:/bin", "A= spaced "))
    if user is not None:
        (d / "user").write_bytes(user)
    return d


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHIM), *argv], capture_output=True, text=True, env=env or {}, timeout=10
    )


def test_user_file_sets_uid_gid_and_exactly_those_groups(tmp_path: Path) -> None:
    d = _dir(tmp_path, _nul("65534", "65533", "7", "44"), "sh", "-c", "id -u; id -g; id -G")
    p = _run(str(d))
    assert p.returncode == 0, p.stderr
    uid, gid, groups = p.stdout.splitlines()
    assert (uid, gid) == ("65534", "65533")
    assert sorted(groups.split()) == sorted(["65533", "7", "44"])


def test_no_user_file_leaves_the_ids(tmp_path: Path) -> None:
    d = _dir(tmp_path, None, ID, "-u")
    p = _run(str(d))
    assert p.returncode == 0 and p.stdout.strip() == "0"


@pytest.mark.parametrize(
    "user",
    [
        b"",
        b"abc\00\0",
        b"-1\00\0",
        b"65534\0",
        b"65534\065534\0x\0",
        b"4294967295\00\0",
        b"1 \00\0",
    ],
)
def test_bad_user_file_refuses_to_run(tmp_path: Path, user: bytes) -> None:
    d = _dir(tmp_path, user, ID, "-u")
    p = _run(str(d))
    assert p.returncode == 126, (user, p.stdout)
    assert p.stdout == "" and "lxcri-init:" in p.stderr


def test_unreadable_user_file_is_not_root(tmp_path: Path) -> None:
    d = _dir(tmp_path, None, ID, "-u")
    (d / "user").mkdir()  # read() fails with EISDIR: must not fall back to "stay root"
    p = _run(str(d))
    assert p.returncode == 126 and p.stdout == ""


def test_exec_mode_env_only_from_lxcri_env_vars(tmp_path: Path) -> None:
    env = {
        "LXCRI_ENV_0": "PATH=/usr/bin:/bin",
        "LXCRI_ENV_1": "X=a\nb",
        "container": "lxc",
        "LD_PRELOAD": "",
    }
    p = _run(
        "--exec",
        "65534",
        "65534",
        "5,6",
        str(tmp_path),
        "--",
        "sh",
        "-c",
        "env; pwd; id -G",
        env=env,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert "X=a" in out and "b" in out and "PATH=/usr/bin:/bin" in out
    assert not any(line.startswith(("container=", "LXCRI_ENV_", "LD_PRELOAD")) for line in out)
    assert str(tmp_path) in out
    assert sorted(out[-1].split()) == ["5", "6", "65534"]


def test_exec_mode_errors(tmp_path: Path) -> None:
    env = {"LXCRI_ENV_0": "PATH=/usr/bin:/bin"}
    p = _run("--exec", "0", "0", "", "/no/such", "--", "true", env=env)
    assert p.returncode == 126 and "chdir /no/such" in p.stderr
    p = _run("--exec", "0", "0", "", "/", "--", "no-such-cmd", env=env)
    assert p.returncode == 127 and "executable file not found" in p.stderr
    p = _run("--exec", "0", "0", "", "/", "true", env=env)
    assert p.returncode == 126 and "usage" in p.stderr
    p = _run("--exec", "zero", "0", "", "/", "--", "true", env=env)
    assert p.returncode == 126 and "bad user" in p.stderr
