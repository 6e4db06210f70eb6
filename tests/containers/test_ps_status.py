"""Docker's view of containers: exit codes and ages, ps -a/-q/--filter, images -q, and the
real state of a container whose supervisor was killed; with real containers."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from lxcri_core.containers import engine
from lxcri_core.spec.options import RunOptions
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, sh, wait_for

pytestmark = pytest.mark.slow

#: A process that ignores the stop signal: only SIGKILL ends it.
STUBBORN = "trap '' TERM; echo up; while :; do sleep 1; done"


def test_kill_after_stop_timeout_records_137(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    lxenv.start("stub", args=(STUBBORN,))
    wait_for(lambda: "up" in (lxenv.state_dir("stub") / "console.log").read_text(), what="up")
    t0 = time.monotonic()
    assert lxcri("stop", "-t", "1", "stub").returncode == 0
    assert time.monotonic() - t0 < 8
    st = engine.status(cfg, "stub")
    assert (st.status, st.exit_code) == ("exited", 137)
    assert json.loads((lxenv.state_dir("stub") / "exit.json").read_text())["exit_code"] == 137
    assert st.status_text.startswith("Exited (137) ")
    line = [ln for ln in lxcri("ps", "-a").stdout.splitlines() if ln.endswith(" stub")]
    assert line and "Exited (137)" in line[0] and " ago" in line[0]
    assert "exited (137)" in lxcri("list").stdout


def test_a_clean_stop_keeps_the_process_status(lxenv: LxcEnv) -> None:
    cfg = lxenv.config()
    lxenv.start("polite", args=("trap 'exit 7' TERM; while :; do sleep 1; done",))
    time.sleep(0.5)  # the trap is set
    engine.stop(cfg, "polite", 10)
    assert engine.status(cfg, "polite").exit_code == 7


def test_killed_supervisor_shows_the_real_state(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    lxenv.start("orphan", args=("sleep 60",))
    sdir = lxenv.state_dir("orphan")
    pid = engine.supervisor_pid(sdir)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine.supervisor_pid(sdir) is None, what="the supervisor to die")
    st = engine.status(cfg, "orphan")
    assert st.status == "running" and st.pid and st.status_text.startswith("Up ")
    # its process ends unobserved (nobody waits for lxc-execute to write exit.json)
    sh("lxc-stop", "-n", "orphan", "-P", str(lxenv.lxcpath), "-k")
    st = engine.status(cfg, "orphan")
    assert (st.status, st.exit_code) == ("exited", None)  # before the fix: "created"
    assert "Exited (unknown)" in lxcri("ps", "-a").stdout
    # and it starts again
    engine.start(cfg, "orphan")
    assert engine.status(cfg, "orphan").status == "running"


def test_stop_without_a_supervisor_records_what_it_knows(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    lxenv.start("orphan2", args=(STUBBORN,))
    sdir = lxenv.state_dir("orphan2")
    pid = engine.supervisor_pid(sdir)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine.supervisor_pid(sdir) is None, what="the supervisor to die")
    assert lxcri("stop", "-t", "1", "orphan2").returncode == 0
    st = engine.status(cfg, "orphan2")
    assert (st.status, st.exit_code) == ("exited", 137) and st.finished_at


def test_ps_is_dockers_view_and_list_shows_all(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    lxenv.start("web1", args=("sleep 60",), labels=("app=web", "tier=front"))
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="idle", args=("true",), labels=("app=db",)))
    lxenv.remember("idle")
    ids = {n: lxenv.ids[n] for n in ("web1", "idle")}

    def ps(*args: str) -> list[str]:
        p = lxcri("ps", *args)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()

    assert ps("-q") == [ids["web1"][:12]]  # running only, as docker
    assert sorted(ps("-a", "-q")) == sorted(i[:12] for i in ids.values())
    assert ps("-a", "-q", "--no-trunc", "--filter", "label=app=db") == [ids["idle"]]
    assert ps("-a", "-q", "--filter", "label=tier") == [ids["web1"][:12]]
    assert ps("-a", "-q", "--filter", "label=app=nope") == []
    # a status filter looks at stopped containers without -a, as docker's does
    assert ps("-q", "--filter", "status=created") == [ids["idle"][:12]]
    assert ps("-q", "-f", "name=eb") == [ids["web1"][:12]]
    assert sorted(ps("-aq", "--filter", f"ancestor={BUSYBOX_REF}")) == sorted(
        i[:12] for i in ids.values()
    )
    digest = lxenv.images[BUSYBOX_REF].split(":")[1][:8]
    assert len(ps("-aq", "--filter", f"ancestor={digest}")) == 2
    assert ps("-aq", "--filter", "ancestor=nginx") == []
    # different keys: all must hold; one key twice: any
    assert ps("-aq", "-f", "label=app", "-f", "status=running") == [ids["web1"][:12]]
    assert len(ps("-aq", "-f", "name=web1", "-f", "name=idle")) == 2
    bad = lxcri("ps", "--filter", "colour=red")
    assert bad.returncode == 2 and "colour=red" in bad.stderr
    # list: every container, with labels in json
    items = json.loads(lxcri("list", "-o", "json").stdout)
    assert {i["name"]: i["labels"] for i in items} == {
        "idle": {"app": "db"},
        "web1": {"app": "web", "tier": "front"},
    }
    assert {i["name"]: i["status"] for i in items} == {"idle": "created", "web1": "running"}
    ps_json = json.loads(lxcri("ps", "-o", "json").stdout)
    assert [i["name"] for i in ps_json] == ["web1"] and ps_json[0]["started_at"]
    table = lxcri("ps").stdout.splitlines()
    assert table[0].split()[:2] == ["CONTAINER", "ID"] and "Up " in table[1]


def test_images_quiet(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    p = lxcri("images", "-q")
    assert p.returncode == 0, p.stderr
    want = sorted({d.split(":")[1][:12] for d in lxenv.images.values()})
    assert sorted(p.stdout.split()) == want
    full = lxcri("images", "-q", "--no-trunc").stdout.split()
    assert sorted(full) == sorted(set(lxenv.images.values()))
