"""`lxcri volume ls|inspect|rm|prune` with real containers."""

from __future__ import annotations

import json

import pytest

from tests.conftest import lxcri_exe, run_lxcri
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow


def test_ls_inspect_and_rm_follow_the_containers_that_use_a_volume(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    p = lxcri("create", "--name", "v1", "-v", "data:/data", "-v", "/scratch", BUSYBOX_REF)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    lxenv.remember("v1")
    (lxenv.root / "volumes" / "data" / "blob").write_bytes(b"x" * 5000)

    p = lxcri("volume", "ls", "--output", "json")
    assert p.returncode == 0, p.stderr
    vols = {v["name"]: v for v in json.loads(p.stdout)}
    assert set(vols) == {"data", f"anon-{cid}-0"}
    assert vols["data"]["users"] == [
        {"container": "v1", "id": cid, "target": "/data", "read_only": False}
    ]
    assert vols[f"anon-{cid}-0"]["anonymous"] and not vols["data"]["dangling"]
    assert lxcri("volume", "ls", "-q", "--filter", "dangling=true").stdout == ""

    p = lxcri("volume", "inspect", "data", "-o", "json")
    doc = json.loads(p.stdout)[0]
    assert doc["size"] == 5000 and doc["path"] == str(lxenv.root / "volumes" / "data")
    assert "used by: v1 at /data (rw)" in lxcri("volume", "inspect", "data").stdout

    p = lxcri("volume", "rm", "data")
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "lxcri: error: volume data is in use by container v1; "
        "remove the container first, or use --force"
    )
    assert (lxenv.root / "volumes" / "data" / "blob").exists()

    assert lxcri("rm", "v1").returncode == 0
    # the anonymous one went with its container, the named one stays
    assert lxcri("volume", "ls", "-q").stdout.split() == ["data"]
    assert lxcri("volume", "ls", "-q", "--filter", "dangling=true").stdout.split() == ["data"]
    p = lxcri("volume", "rm", "data", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"removed": ["data"]}
    assert not (lxenv.root / "volumes" / "data").exists()
    p = lxcri("volume", "inspect", "data")
    assert p.returncode == 1 and "no such volume: data" in p.stderr


def test_force_removes_a_volume_of_a_stopped_container_never_of_a_running_one(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    lxenv.start("v2", args=("exec sleep 60",), volumes=("keep:/keep",))
    p = lxcri("volume", "rm", "-f", "keep")
    assert p.returncode == 1
    assert "mounted by running container v2" in p.stderr
    assert (lxenv.root / "volumes" / "keep").is_dir()
    assert lxcri("stop", "-t", "0", "v2").returncode == 0
    p = lxcri("volume", "rm", "-f", "keep")
    assert p.returncode == 0, p.stderr
    assert not (lxenv.root / "volumes" / "keep").exists()


def test_prune_keeps_used_volumes_and_asks_first(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    assert lxcri("create", "--name", "v3", "-v", "used:/u", BUSYBOX_REF).returncode == 0
    lxenv.remember("v3")
    (lxenv.root / "volumes" / "unused").mkdir()
    (lxenv.root / "volumes" / "unused" / "f").write_bytes(b"1234")
    p = run_lxcri("volume", "prune", input="n\n", env=lxenv.env)
    assert p.returncode == 1
    assert (lxenv.root / "volumes" / "unused").is_dir()
    p = lxcri("volume", "prune", "-f", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"removed": ["unused"], "reclaimed_bytes": 4}
    assert (lxenv.root / "volumes" / "used").is_dir()


def test_bad_input_is_one_line_and_exit_1(lxcri: Lxcri) -> None:
    for argv in (
        ("volume", "rm", "../containers"),
        ("volume", "inspect", "nope"),
        ("volume", "ls", "--filter", "driver=local"),
    ):
        p = lxcri(*argv)
        assert p.returncode == 1, (argv, p.stderr)
        assert p.stdout == ""
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_shell_completion_offers_container_and_volume_names(lxenv: LxcEnv) -> None:
    import os
    import subprocess
    from pathlib import Path

    run_lxcri("create", "--name", "web1", "-v", "webdata:/d", BUSYBOX_REF, env=lxenv.env)
    lxenv.remember("web1")

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {
            **os.environ,
            **lxenv.env,
            "_LXCRI_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        exe = Path(lxcri_exe())
        out = subprocess.run([str(exe)], env=env, capture_output=True, text=True).stdout
        return [item.split(",", 1)[1] for item in out.splitlines() if item]

    assert complete("lxcri kill we") == ["web1"]
    assert complete("lxcri top x") == []
    assert complete("lxcri volume rm web") == ["webdata"]
