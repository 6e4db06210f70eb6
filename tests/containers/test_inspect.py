"""`lxcri inspect` on containers: docker's shape, secrets masked, names before images."""

from __future__ import annotations

import json

import pytest

from lxcri_core.containers import engine
from lxcri_core.spec.options import RunOptions
from tests.containers.conftest import Lxcri
from tests.support.images import busybox_image
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port

pytestmark = pytest.mark.slow

SECRET = "hunter2-s3cr3t"


def test_inspect_a_running_container(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    port = free_port()
    lxenv.start(
        "web1",
        args=("sleep 60",),
        env=(f"DB_PASSWORD={SECRET}", "MODE=prod"),
        labels=("app=web",),
        publish=(f"127.0.0.1:{port}:80",),
        volumes=("data1:/data",),
        memory="64m",
        restart="on-failure:3",
    )
    cid = lxenv.ids["web1"]
    p = lxcri("inspect", "-o", "json", cid[:10])  # an id prefix names it too
    assert p.returncode == 0, p.stderr
    docs = json.loads(p.stdout)
    assert isinstance(docs, list) and len(docs) == 1
    d = docs[0]
    assert (d["id"], d["name"], d["image"]) == (cid, "web1", BUSYBOX_REF)
    assert d["image_digest"] == lxenv.images[BUSYBOX_REF]
    st = d["state"]
    assert st["status"] == "running" and st["running"] and st["pid"] > 1
    assert st["exit_code"] is None and st["started_at"]
    env = d["config"]["env"]
    assert "DB_PASSWORD=***" in env and "MODE=***" in env
    assert any(e.startswith("PATH=/") for e in env)  # the image's own: public
    assert SECRET not in p.stdout
    assert d["config"]["labels"] == {"app": "web"}
    assert d["network_settings"]["ports"] == [
        {"host_ip": "127.0.0.1", "host_port": port, "container_port": 80, "protocol": "tcp"}
    ]
    assert d["network_settings"]["ip_address"]
    assert [(m["type"], m["name"], m["destination"]) for m in d["mounts"]] == [
        ("volume", "data1", "/data")
    ]
    assert d["host_config"]["resources"]["memory"] == 64 * 1024 * 1024
    assert d["host_config"]["restart_policy"] == {"name": "on-failure", "maximum_retry_count": 3}
    # for people: readable lines, the secret still hidden
    t = lxcri("inspect", "web1")
    assert t.returncode == 0, t.stderr
    assert "Status:" in t.stdout and "Up " in t.stdout and "DB_PASSWORD=***" in t.stdout
    assert f"127.0.0.1:{port}->80/tcp" in t.stdout and "app=web" in t.stdout
    assert SECRET not in t.stdout
    shown = lxcri("inspect", "--show-secrets", "-o", "json", "web1")
    assert f"DB_PASSWORD={SECRET}" in json.loads(shown.stdout)[0]["config"]["env"]


def test_inspect_an_exited_container(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="done", args=("exit 4",)))
    lxenv.remember("done")
    assert engine.run_foreground(cfg, "done") == 4
    d = json.loads(lxcri("inspect", "-o", "json", "done").stdout)[0]
    assert d["state"]["status"] == "exited" and d["state"]["exit_code"] == 4
    assert d["state"]["pid"] is None and d["state"]["finished_at"]
    assert "Exit code:" in lxcri("inspect", "done").stdout


def test_a_name_that_is_both_is_the_container(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = lxenv.config()
    lxenv.add_image(busybox_image(), "docker.io/library/both:latest")
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="both", args=("true",)))
    lxenv.remember("both")
    ct = json.loads(lxcri("inspect", "-o", "json", "both").stdout)
    assert isinstance(ct, list) and ct[0]["name"] == "both"
    img = json.loads(lxcri("inspect", "--type", "image", "-o", "json", "both").stdout)
    assert img["name"] == "docker.io/library/both:latest"
    # an image only: the image; nothing: one line naming both kinds
    assert json.loads(lxcri("inspect", "-o", "json", BUSYBOX_REF).stdout)["digest"]
    p = lxcri("inspect", "nothere")
    assert p.returncode == 1 and "`lxcri ps -a`" in p.stderr and "`lxcri pull nothere`" in p.stderr
    assert "no such container or image: nothere" in p.stderr and len(p.stderr.splitlines()) == 1
    p = lxcri("inspect", "--type", "container", BUSYBOX_REF)
    assert p.returncode == 1 and "no such container" in p.stderr
