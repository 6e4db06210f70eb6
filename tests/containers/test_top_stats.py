"""`lxcri top` and `lxcri stats` on real containers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from lxcri_core.containers import engine
from tests.conftest import lxcri_exe
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, wait_for

pytestmark = pytest.mark.slow

BUSY = "while :; do :; done & exec sleep 300"


def test_top_lists_the_containers_processes_with_inside_ids(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    pid = lxenv.start("t1", args=("exec sleep 300",), user="33:33")
    wait_for(lambda: len(json.loads(lxcri("top", "t1", "-o", "json").stdout)) >= 2, what="sleep")
    procs = json.loads(lxcri("top", "t1", "-o", "json").stdout)
    by_cmd = {p["cmd"]: p for p in procs}
    sleep = by_cmd["sleep 300"]
    assert sleep["ppid"] == pid and sleep["cpid"] == 2
    assert (sleep["uid"], sleep["host_uid"]) == (33, 100033)  # unprivileged: mapped back
    assert not any(p["pid"] == os.getpid() for p in procs)  # nothing of the host
    table = lxcri("top", "t1").stdout.splitlines()
    assert table[0].split() == ["UID", "PID", "PPID", "CPID", "TIME", "CMD"]
    assert any(line.split()[:2] == ["33", str(sleep["pid"])] for line in table)


def test_top_and_stats_refuse_a_stopped_container(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    assert lxcri("create", "--name", "t2", BUSYBOX_REF).returncode == 0
    lxenv.remember("t2")
    for argv in (("top", "t2"), ("stats", "--no-stream", "t2")):
        p = lxcri(*argv)
        assert p.returncode == 1
        assert p.stderr.strip() == "lxcri: error: container t2 is not running"


def test_stats_one_shot_reads_the_limits_and_usage(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("s1", args=(BUSY,), memory="64m", pids_limit="40")
    lxenv.start("s2", args=("exec sleep 300",))
    p = lxcri("stats", "--no-stream", "s1", "-o", "json")
    assert p.returncode == 0, p.stderr
    (doc,) = json.loads(p.stdout)
    assert doc["name"] == "s1" and doc["memory_limit"] == 64 * 1024 * 1024
    assert 0 < doc["memory"] < doc["memory_limit"]
    assert doc["pids"] == 3 and doc["pids_limit"] == 40  # init, the loop, sh exec-ed to sleep
    assert doc["cpu_percent"] > 50  # one busy loop is most of a core
    assert doc["net_rx"] >= 0 and doc["block_read"] is not None
    every = json.loads(lxcri("stats", "--no-stream", "-o", "json").stdout)
    assert {d["name"] for d in every} == {"s1", "s2"}
    idle = next(d for d in every if d["name"] == "s2")
    assert idle["cpu_percent"] < 20 and idle["pids_limit"] is None
    table = lxcri("stats", "--no-stream").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "ID", "CPU"]


def test_stats_streams_until_interrupted(lxenv: LxcEnv) -> None:
    lxenv.start("s3", args=("exec sleep 300",))
    proc = subprocess.Popen(
        [lxcri_exe(), "stats", "-o", "json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **lxenv.env},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    docs = [json.loads(line) for line in lines]
    assert all(d[0]["name"] == "s3" for d in docs)
    assert engine.status(lxenv.config(), "s3").status == "running"
