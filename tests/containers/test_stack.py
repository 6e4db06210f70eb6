"""A two-service stack on real LXC containers, through the real CLI: the web service
starts only once its backend is healthy, reaches it by its service name, answers
through its published port from the host; ``down`` leaves no container, and with
``--volumes`` no volume either."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from lxcri_core.containers.volumes import volumes_dir
from tests.conftest import lxcri_exe, run_lxcri
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import DEMO_REF, LxcEnv, free_port, http_get

pytestmark = pytest.mark.slow

# the backend serves a page of its own once its volume holds it; web copies that page
# from http://backend/ at its start (so it fails unless backend is up and resolves by
# name), then serves it on :80, published on the host
STACK = """\
name: {name}
services:
  web:
    image: {image}
    entrypoint: ["/bin/sh", "-c"]
    command:
      - >-
        mkdir -p /tmp/w && wget -q -O /tmp/w/index.html http://backend/
        && exec httpd -f -p 80 -h /tmp/w
    ports:
      - "127.0.0.1:{port}:80"
    depends_on:
      backend:
        condition: service_healthy
  backend:
    image: {image}
    entrypoint: /bin/sh -c
    command:
      - sleep 2; echo "from-backend-$$TOKEN" > /data/index.html && exec httpd -f -p 80 -h /data
    environment:
      TOKEN: {token}
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/"]
      interval: 1s
      retries: 30
volumes:
  data:
"""


@pytest.fixture
def demo(lxenv: LxcEnv) -> LxcEnv:
    lxenv.add_demo()
    return lxenv


def test_two_services_up_in_order_reachable_by_name_and_down_leaves_nothing(
    lxcri: Lxcri, demo: LxcEnv, tmp_path: Path
) -> None:
    name = "st" + secrets.token_hex(3)
    token = secrets.token_hex(4)
    port = free_port()
    stack = tmp_path / "stack.yaml"
    stack.write_text(STACK.format(name=name, image=DEMO_REF, port=port, token=token))

    up = lxcri("up", "-d", "-f", str(stack))
    assert up.returncode == 0, up.stderr
    # the backend was created and found healthy before web was created
    events = up.stderr.splitlines()
    assert (
        events.index(f"backend: {name}-backend-1 created")
        < events.index("web: waiting for backend to be healthy")
        < events.index(f"web: {name}-web-1 created")
    ), up.stderr
    for ct in (f"{name}-backend-1", f"{name}-web-1"):
        demo.remember(ct)

    # web fetched the page from http://backend/ (its name, via /etc/hosts) and serves it
    assert http_get(port).strip() == f"from-backend-{token}"

    ps = lxcri("stack", "ps", "-f", str(stack), "--output", "json")
    assert ps.returncode == 0, ps.stderr
    rows = json.loads(ps.stdout)
    assert [(r["service"], r["name"], r["status"]) for r in rows] == [
        ("backend", f"{name}-backend-1", "running"),
        ("web", f"{name}-web-1", "running"),
    ]
    assert rows[0]["health"] == "healthy"

    # a second up changes nothing that runs with the same settings
    again = lxcri("up", "-d", "-f", str(stack))
    assert again.returncode == 0, again.stderr
    assert f"web: {name}-web-1 is running" in again.stderr

    logs = lxcri("stack", "logs", "--file", str(stack), "web")
    assert logs.returncode == 0, logs.stderr

    vol = volumes_dir(demo.root) / f"{name}_data"
    assert (vol / "index.html").read_text().strip() == f"from-backend-{token}"

    down = lxcri("down", "-f", str(stack))
    assert down.returncode == 0, down.stderr
    listed = lxcri("list", "--output", "json")
    assert json.loads(listed.stdout) == []
    assert vol.is_dir(), "down without --volumes keeps the named volume"

    down_v = lxcri("down", "-f", str(stack), "--volumes")
    assert down_v.returncode == 0, down_v.stderr
    assert not vol.exists()
    vols = lxcri("volume", "ls", "-q")
    assert vols.returncode == 0 and vols.stdout == "", vols.stdout + vols.stderr


def test_a_dependency_that_turns_unhealthy_stops_up_before_its_dependents(
    lxcri: Lxcri, demo: LxcEnv, tmp_path: Path
) -> None:
    name = "st" + secrets.token_hex(3)
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        f"name: {name}\n"
        "services:\n"
        "  web:\n"
        f"    image: {DEMO_REF}\n"
        "    depends_on: {db: {condition: service_healthy}}\n"
        "  db:\n"
        f"    image: {DEMO_REF}\n"
        "    healthcheck: {test: 'false', interval: 1s, retries: 1}\n"
    )
    up = lxcri("up", "-d", "-f", str(stack), "--timeout", "60")
    demo.remember(f"{name}-db-1")
    assert up.returncode == 1
    assert up.stderr.splitlines()[-1] == f"lxcri: error: service db ({name}-db-1) is unhealthy"
    ps = lxcri("stack", "ps", "-f", str(stack), "--output", "json")
    assert [r["service"] for r in json.loads(ps.stdout)] == ["db"], "web was never created"
    down = lxcri("down", "-f", str(stack))
    assert down.returncode == 0, down.stderr
    assert json.loads(lxcri("list", "--output", "json").stdout) == []


def test_a_bad_stack_file_is_one_line_and_creates_nothing(
    lxcri: Lxcri, demo: LxcEnv, tmp_path: Path
) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        f"name: bad\nservices:\n  a: {{image: {DEMO_REF}}}\n"
        f"  b: {{image: {DEMO_REF}, ports: ['80', 'x:80']}}\n"
    )
    up = lxcri("up", "-d", "-f", str(stack))
    assert up.returncode == 1
    assert up.stderr == (
        f"lxcri: error: {stack}: services.b.ports[1]: invalid -p value 'x:80': "
        "'x' is not a port or port range\n"
    )
    assert json.loads(lxcri("list", "--output", "json").stdout) == []


def test_up_in_the_foreground_follows_the_output_and_ctrl_c_stops_the_stack(
    demo: LxcEnv, tmp_path: Path
) -> None:
    name = "st" + secrets.token_hex(3)
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        f"name: {name}\nservices:\n  talker:\n    image: {DEMO_REF}\n"
        "    entrypoint: [/bin/sh, -c, 'echo hello-from-talker; exec sleep 120']\n"
    )
    proc = subprocess.Popen(
        [lxcri_exe(), "up", "-f", str(stack)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a hang shows where each thread was (SIGABRT below)
        env={**os.environ, **demo.env, "PYTHONFAULTHANDLER": "1"},
        # as from a terminal: `make test` runs the trixie suite as a background job,
        # which the shell starts with SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler in the children
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        demo.remember(f"{name}-talker-1")
        assert line == b"talker | hello-from-talker\n"
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
            pytest.fail("lxcri up did not end on SIGINT:\n" + proc.stderr.read().decode())
        assert rc == 130, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    st = json.loads(run_lxcri("stack", "ps", "-f", str(stack), "-o", "json", env=demo.env).stdout)
    assert [(r["service"], r["status"]) for r in st] == [("talker", "exited")]
    assert run_lxcri("down", "-f", str(stack), env=demo.env).returncode == 0
