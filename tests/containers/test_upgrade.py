"""``lxcri upgrade``/``rollback``/``history``/``auto-update`` on plain LXC, through the real
CLI with real containers: data kept, image changed, rolled back (by hand and by itself),
and a kill -9 at each step of both leaving a container that starts."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from lxcri_core.backend import CtRef, UpgradeRequest
from lxcri_core.containers.lxc_backend import LxcBackend
from lxcri_core.containers.record import load_record
from lxcri_core.storage import open_backend
from tests.containers.conftest import Lxcri
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar
from tests.support.lxcenv import LxcEnv, free_port, http_get, wait_for
from tests.support.registry import push_image, start_registry

pytestmark = pytest.mark.slow

REF = "localhost/lxt-app:latest"


def app_image(version: str, *, cmd: str = "exec httpd -f -p 80 -h /www", **config: object) -> Image:
    """busybox (the same base layer in every version) and a layer of its own: /www and
    /version say ``version``; ENV VERSION=version."""
    img = busybox_image(Cmd=[cmd], Env=["PATH=/bin", f"VERSION={version}"], **config)
    app = make_tar(
        [
            Entry("www", "dir", mode=0o755),
            Entry("www/index.html", data=f"app {version}\n".encode()),
            Entry("version", data=f"{version}\n".encode()),
        ]
    )
    img.layers.append(Layer(app))
    return img


def ok(r: object) -> str:
    assert r.returncode == 0, r.stderr  # type: ignore[attr-defined]
    return r.stdout  # type: ignore[attr-defined,no-any-return]


def served(port: int, version: str) -> None:
    last: list[str] = [""]

    def page() -> str:
        try:
            last[0] = http_get(port)
        except OSError as e:  # not listening yet
            last[0] = str(e)
        return last[0]

    what = f"app {version} on {port}"
    try:
        wait_for(lambda: f"app {version}" in page(), timeout=20, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the last answer: {last[0][:200]!r}") from None


def run_app(lxcri: Lxcri, name: str) -> int:
    port = free_port()
    ok(lxcri("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "-v",
             f"{name}-data:/data", "-e", "USERVAR=mine", REF))  # fmt: skip
    served(port, "1")
    ok(lxcri("exec", name, "sh", "-c", "echo kept > /data/f"))
    return port


def test_upgrade_keeps_volume_port_and_env_then_rollback(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    lxenv.add_image(app_image("1"), REF)
    port = run_app(lxcri, "upg")
    before = load_record(lxenv.root, "upg")
    lxenv.add_image(app_image("2", Volumes={"/cache": {}}), REF)

    out = json.loads(ok(lxcri("upgrade", "upg", "--pull", "never", "-o", "json")))
    assert out[0]["outcome"] == "upgraded" and out[0]["started"], out
    assert out[0]["new_digest"] == lxenv.images[REF] != out[0]["old_digest"]
    served(port, "2")  # the same published port
    assert ok(lxcri("exec", "upg", "cat", "/data/f", "/version")) == "kept\n2\n"
    env = ok(lxcri("exec", "upg", "sh", "-c", "echo $VERSION $USERVAR"))
    assert env == "2 mine\n"  # the image's env follows the image, the user's stays
    after = load_record(lxenv.root, "upg")
    assert (after.id, after.vmid, after.ipv4) == (before.id, before.vmid, before.ipv4)
    assert after.generation == 2 and "/cache" in after.anon_volumes
    # the kept generation's record holds the process's environment: root's alone
    kept = lxenv.root / "generations"
    assert os.stat(kept).st_mode & 0o077 == 0
    assert os.stat(kept / "upg" / "1" / "lxcri.json").st_mode & 0o077 == 0

    hist = json.loads(ok(lxcri("history", "upg", "-o", "json")))
    assert [(g["number"], g["current"]) for g in hist] == [(2, True), (1, False)]
    assert hist[1]["image_digest"] == before.image_digest
    assert before.image_digest.split(":")[1][:12] in ok(lxcri("history", "upg"))

    # unchanged: left running, nothing rebuilt
    again = json.loads(ok(lxcri("upgrade", "upg", "--pull", "never", "-o", "json")))
    assert again[0]["outcome"] == "unchanged" and "already at" in again[0]["message"]

    back = json.loads(ok(lxcri("rollback", "upg", "-o", "json")))
    assert back[0]["outcome"] == "rolled-back" and back[0]["new_digest"] == before.image_digest
    served(port, "1")
    assert ok(lxcri("exec", "upg", "cat", "/data/f", "/version")) == "kept\n1\n"
    assert ok(lxcri("exec", "upg", "sh", "-c", "echo $VERSION")) == "1\n"
    assert [g["number"] for g in json.loads(ok(lxcri("history", "upg", "-o", "json")))] == [1]
    # the discarded generation's rootfs is gone from the storage backend
    assert after.rootfs_key not in open_backend(lxenv.config(), after.storage).containers()

    r = lxcri("rollback", "upg")
    assert r.returncode == 1 and "no earlier generation" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_broken_new_image_is_rolled_back_by_itself(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    lxenv.add_image(app_image("1"), REF)
    port = run_app(lxcri, "brk")
    lxenv.add_image(app_image("bad", cmd="echo broken; exit 3"), REF)
    r = lxcri("upgrade", "brk", "--pull", "never", "--health-timeout", "10", "-o", "json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)[0]
    assert out["outcome"] == "rolled-back" and "exited" in out["message"], out
    served(port, "1")
    assert ok(lxcri("exec", "brk", "cat", "/data/f")) == "kept\n"
    hist = json.loads(ok(lxcri("history", "brk", "-o", "json")))
    assert [g["number"] for g in hist] == [1]


def test_unhealthy_new_image_is_rolled_back(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    healthy = {"Test": ["CMD-SHELL", "test -f /version"], "Interval": 500_000_000}
    lxenv.add_image(app_image("1", Healthcheck=healthy), REF)
    port = run_app(lxcri, "hc")
    sick = {"Test": ["CMD-SHELL", "exit 1"], "Interval": 500_000_000, "Retries": 1}
    lxenv.add_image(app_image("2", Healthcheck=sick), REF)
    r = lxcri("upgrade", "hc", "--pull", "never", "--health-timeout", "8")
    assert r.returncode == 1 and "rolled back" in r.stdout and "healthcheck" in r.stdout, r
    served(port, "1")


def test_keep_generations_prunes_the_oldest(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    cfg = dataclasses.replace(lxenv.config(), keep_generations=1)
    lxenv.add_image(app_image("1"), REF)
    ok(lxcri("create", "--name", "kg", REF))
    first = load_record(lxenv.root, "kg")
    backend = LxcBackend(cfg)
    for v in ("2", "3"):
        lxenv.add_image(app_image(v), REF)
        res = backend.upgrade(CtRef("kg"), UpgradeRequest(pull="never"))
        assert res.outcome == "upgraded" and not res.started  # it was not running
    hist = backend.history(CtRef("kg"))
    assert [(g.number, g.current) for g in hist] == [(3, True), (2, False)]
    assert first.rootfs_key not in open_backend(cfg, first.storage).containers()
    ok(lxcri("start", "kg"))
    assert ok(lxcri("exec", "kg", "cat", "/version")) == "3\n"


def test_image_prune_keeps_what_a_kept_generation_uses(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    lxenv.add_image(app_image("1"), REF)
    port = run_app(lxcri, "pr")
    lxenv.add_image(app_image("2"), REF)
    ok(lxcri("upgrade", "pr", "--pull", "never"))
    ok(lxcri("image", "prune"))
    ok(lxcri("rollback", "pr"))
    served(port, "1")


UPGRADE_STEPS = [
    "upgrade-rootfs",
    "upgrade-built",
    "upgrade-stopped",
    "upgrade-swap-old",
    "upgrade-swap-new",
]
ROLLBACK_STEPS = ["rollback-stopped", "rollback-swap-old", "rollback-swap-new", "rollback-discard"]


@pytest.mark.exhaustive
@pytest.mark.parametrize("step", UPGRADE_STEPS + ROLLBACK_STEPS)
def test_kill_9_at_each_step_leaves_a_container_that_starts(
    lxenv: LxcEnv, lxcri: Lxcri, step: str
) -> None:
    lxenv.add_image(app_image("1"), REF)
    port = run_app(lxcri, "k9")
    lxenv.add_image(app_image("2"), REF)
    op = ["upgrade", "k9", "--pull", "never"] if step.startswith("upgrade") else ["rollback", "k9"]
    if op[0] == "rollback":
        ok(lxcri("upgrade", "k9", "--pull", "never"))
        served(port, "2")
    killed = lxcri(*op, env_extra={"LXCRI_FAULT": step})
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)

    # the next command completes or undoes the half-done step; the container starts
    listed = json.loads(ok(lxcri("list", "-o", "json")))
    assert [c["name"] for c in listed] == ["k9"]
    st = listed[0]
    if st["status"] != "running":
        ok(lxcri("start", "k9"))
    version = "2" if st["image_digest"] == lxenv.images[REF] else "1"
    served(port, version)
    assert ok(lxcri("exec", "k9", "cat", "/data/f", "/version")) == f"kept\n{version}\n"
    # undone: it can be done again; completed: it is done
    goal = "2" if op[0] == "upgrade" else "1"
    if version != goal:
        ok(lxcri(*op))
        served(port, goal)
    leftovers = [p.name for p in lxenv.lxcpath.iterdir() if p.name.startswith(".k9.")]
    assert leftovers == [], leftovers
    # no rootfs without a generation: the current one plus those kept
    rec = load_record(lxenv.root, "k9")
    storage = open_backend(lxenv.config(), rec.storage).containers()
    hist = json.loads(ok(lxcri("history", "k9", "-o", "json")))
    assert len(storage) == len(hist), (storage, hist)


def test_auto_update_from_the_registry(lxenv: LxcEnv, lxcri: Lxcri, tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "reg")
    try:
        ref = f"{reg.addr}/lxt/app:stable"
        push_image(reg.addr, app_image("1"), "lxt/app:stable", tmp_path)
        port = free_port()
        ok(lxcri("run", "-d", "--insecure", "--name", "au", "--auto-update", "registry",
                 "-p", f"127.0.0.1:{port}:80", ref))  # fmt: skip
        ok(lxcri("create", "--insecure", "--name", "manual", ref))  # not opted in
        served(port, "1")
        out = json.loads(ok(lxcri("auto-update", "--insecure", "-o", "json")))
        assert [(r["name"], r["outcome"]) for r in out] == [("au", "unchanged")]

        push_image(reg.addr, app_image("2"), "lxt/app:stable", tmp_path)
        dry = json.loads(ok(lxcri("auto-update", "--insecure", "--dry-run", "-o", "json")))
        assert dry[0]["outcome"] == "would-upgrade"
        served(port, "1")  # a dry run changes nothing

        out = json.loads(ok(lxcri("auto-update", "--insecure", "-o", "json")))
        assert out[0]["outcome"] == "upgraded", out
        served(port, "2")

        push_image(reg.addr, app_image("3", cmd="exit 4"), "lxt/app:stable", tmp_path)
        r = lxcri("auto-update", "--insecure", "--health-timeout", "10", "-o", "json")
        assert r.returncode == 1
        assert json.loads(r.stdout)[0]["outcome"] == "rolled-back"
        served(port, "2")
        manual = load_record(lxenv.root, "manual")
        assert manual.generation == 1
    finally:
        reg.stop()


STACK = """\
name: {name}
services:
  app:
    image: {image}
    ports:
      - "127.0.0.1:{port}:80"
    labels:
      lxcri.auto-update: registry
    volumes:
      - data:/data
  side:
    image: localhost/lxt-side:latest
    command: ["exec sleep 3600"]
volumes:
  data:
"""


def test_stack_upgrade_moves_each_service_whose_image_moved(
    lxenv: LxcEnv, lxcri: Lxcri, tmp_path: Path
) -> None:
    lxenv.add_image(app_image("1"), REF)
    lxenv.add_image(busybox_image(), "localhost/lxt-side:latest")
    port = free_port()
    stack = tmp_path / "stack.yaml"
    stack.write_text(STACK.format(name="su", image=REF, port=port))
    ok(lxcri("up", "-d", "-f", str(stack)))
    served(port, "1")
    lxenv.add_image(app_image("2"), REF)
    out = json.loads(ok(lxcri("upgrade", "-f", str(stack), "--pull", "never", "-o", "json")))
    assert sorted((r["name"], r["outcome"]) for r in out) == [
        ("su-app-1", "upgraded"),
        ("su-side-1", "unchanged"),
    ]
    served(port, "2")
    # the stack is as its file says: `up` leaves the upgraded service alone
    ok(lxcri("up", "-d", "-f", str(stack)))
    assert load_record(lxenv.root, "su-app-1").generation == 2
    # the stack's label opted the service in to auto-update
    listed = json.loads(ok(lxcri("list", "-o", "json")))
    opted = {c["name"] for c in listed if c["labels"].get("lxcri.auto-update") == "registry"}
    assert opted == {"su-app-1"}
    ok(lxcri("down", "-f", str(stack), "--volumes"))
    assert json.loads(ok(lxcri("list", "-o", "json"))) == []
    assert not (lxenv.root / "generations" / "su-app-1").exists()


def test_volume_prune_keeps_what_the_current_and_kept_generations_use(
    lxenv: LxcEnv, lxcri: Lxcri
) -> None:
    lxenv.add_image(app_image("1", Volumes={"/old": {}}), REF)
    ok(lxcri("run", "-d", "--name", "vp", REF))
    ok(lxcri("exec", "vp", "sh", "-c", "echo old-data > /old/f"))
    # the new image drops /old and declares /new: an anonymous volume of its own
    lxenv.add_image(app_image("2", Volumes={"/new": {}}), REF)
    ok(lxcri("upgrade", "vp", "--pull", "never"))
    ok(lxcri("exec", "vp", "sh", "-c", "echo new-data > /new/f"))
    ok(lxcri("volume", "prune", "-f"))
    assert ok(lxcri("exec", "vp", "cat", "/new/f")) == "new-data\n"
    ok(lxcri("rollback", "vp"))
    assert ok(lxcri("exec", "vp", "cat", "/old/f")) == "old-data\n"


def test_a_container_of_an_older_lxcri_is_refused_and_left_alone(
    lxenv: LxcEnv, lxcri: Lxcri
) -> None:
    lxenv.add_image(app_image("1"), REF)
    ok(lxcri("create", "--name", "old", REF))
    path = lxenv.state_dir("old") / "lxcri.json"
    doc = json.loads(path.read_text())
    del doc["options"]  # as lxcri 0.2 wrote it
    path.write_text(json.dumps(doc))
    lxenv.add_image(app_image("2"), REF)
    r = lxcri("upgrade", "old", "--pull", "never")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "cannot be upgraded" in r.stderr
    assert json.loads(path.read_text()) == doc
    assert [p.name for p in lxenv.lxcpath.iterdir() if p.name.startswith(".old")] == []


def test_upgrade_and_rollback_on_each_storage_backend(
    lxenv: LxcEnv, lxcri: Lxcri, storage: str
) -> None:
    lxenv.add_image(app_image("1"), REF)
    port = free_port()
    ok(lxcri("run", "-d", "--name", "sb", "--storage", storage, "-p", f"127.0.0.1:{port}:80",
             REF))  # fmt: skip
    served(port, "1")
    ok(lxcri("exec", "sb", "sh", "-c", "echo mine > /written"))
    lxenv.add_image(app_image("2"), REF)
    ok(lxcri("upgrade", "sb", "--pull", "never"))
    served(port, "2")
    hist = json.loads(ok(lxcri("history", "sb", "-o", "json")))
    # each generation has a rootfs of its own on the backend: a zfs clone, an
    # overlay upper dir, a dir copy
    assert len({g["rootfs"] for g in hist}) == 2 and all(g["rootfs"] for g in hist)
    if storage == "zfs":
        assert all("/" in g["rootfs"] and not g["rootfs"].startswith("/") for g in hist)
    # the new generation starts from the new image: the old one's writes stay with it
    r = lxcri("exec", "sb", "cat", "/written")
    assert r.returncode != 0
    ok(lxcri("rollback", "sb"))
    served(port, "1")
    assert ok(lxcri("exec", "sb", "cat", "/written")) == "mine\n"
