"""``lxcri pull|push|login|logout`` as a user runs them."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner, Result

from tests.conftest import lxcri_exe, run_lxcri
from tests.registry.conftest import PASSWORD, USER, AuthRegistry, Populated
from tests.support.jsonkeys import bad_keys

pytestmark = pytest.mark.slow


def invoke(*args: str, input: str | None = None) -> Result:
    """In-process CLI run with stderr kept apart (click 8.1 mixes them by default)."""
    from lxcri_pve.cli.main import cli as group

    runner = CliRunner(mix_stderr=False)
    return runner.invoke(group, list(args), input=input, catch_exceptions=False)


def test_pull_json_output(registry: Populated) -> None:
    ref = f"{registry.addr}/test/idx:1.0"
    res = invoke("pull", "--insecure", "--platform", "linux/arm64", "-o", "json", ref)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["name"] == ref
    assert doc["platform"] == "linux/arm64"
    assert doc["index"] == registry.index.manifest_digest
    assert bad_keys(doc) == []  # "mediaType" before: one naming style (cli/output.py)


def test_pull_table_output_and_quiet_stderr_when_piped(registry: Populated) -> None:
    proc = run_lxcri("pull", "--insecure", f"{registry.addr}/test/bb:1.0")
    assert proc.returncode == 0, proc.stderr
    assert registry.bb.manifest_digest[7:19] in proc.stdout
    assert f"{registry.addr}/test/bb:1.0" in proc.stdout
    assert proc.stderr == ""  # no progress bars without a TTY


def test_pull_error_is_one_line_exit_1(registry: Populated) -> None:
    proc = run_lxcri("pull", "--insecure", f"{registry.addr}/test/nothing:1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("lxcri: error: manifest ")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("verb", ["pull", "push", "login"])
def test_plain_http_registry_reached_with_tls_says_use_insecure(
    registry: Populated, verb: str
) -> None:
    # 127.0.0.1 is not insecure by default (docker's exception for it is not kept):
    # lxcri speaks TLS to the plain-http docker-registry
    args = {
        "pull": [f"{registry.addr}/test/bb:1.0"],
        "push": [f"{registry.addr}/test/bb:1.0", f"{registry.addr}/cli/plain:1"],
        "login": ["-u", USER, "--password-stdin", registry.addr],
    }[verb]
    if verb == "push":
        assert run_lxcri("pull", "--insecure", args[0]).returncode == 0
    proc = run_lxcri(verb, *args, input=PASSWORD + "\n")
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    message = (
        f"{registry.addr} answered plain HTTP to a TLS connection: use --insecure"
        " or add it to registries.insecure in /etc/lxcri/config.yaml"
    )
    assert proc.stderr.splitlines() == [
        f"lxcri: error: cannot log in to {registry.addr}: {message}"
        if verb == "login"
        else f"lxcri: error: {message}"
    ]


def test_push_json_output(registry: Populated) -> None:
    src = f"{registry.addr}/test/bb:1.0"
    assert invoke("pull", "--insecure", src).exit_code == 0
    dest = f"{registry.addr}/cli/pushed:2"
    res = invoke("push", "--insecure", "-o", "json", src, dest)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {
        "source": src,
        "destination": dest,
        "digest": registry.bb.manifest_digest,
    }


def test_login_password_stdin_then_logout(auth_registry: AuthRegistry, cfg) -> None:
    res = invoke(
        "login", "--insecure", "-u", USER, "--password-stdin", auth_registry.addr,
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert stat.S_IMODE(cfg.auth_file.stat().st_mode) == 0o600
    assert PASSWORD not in res.stdout + res.stderr
    assert invoke("pull", "--insecure", f"{auth_registry.addr}/private/bb:1.0").exit_code == 0
    res = invoke("logout", auth_registry.addr)
    assert res.exit_code == 0
    assert auth_registry.addr not in json.loads(cfg.auth_file.read_text())["auths"]


def test_login_prompts_and_rejects_bad_password(auth_registry: AuthRegistry, cfg) -> None:
    res = invoke("login", "--insecure", auth_registry.addr, input=f"{USER}\nwrong\n")
    assert res.exit_code == 1
    assert "refused the credentials" in res.stderr
    assert not cfg.auth_file.exists()
    res = invoke("login", "--insecure", auth_registry.addr, input=f"{USER}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.stderr


def test_no_password_option_on_argv() -> None:
    res = invoke("login", "--password", "x", "-u", "u", "r.example")
    assert res.exit_code == 2


def test_progress_bars_on_a_tty(registry: Populated) -> None:
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [lxcri_exe(), "pull", "--insecure",
         f"{registry.addr}/test/multi:1.0"],
        stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    os.close(slave)
    out = proc.communicate(timeout=120)[0]
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty_text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert registry.multi.manifest_digest[7:19].encode() in out
    layer = json.loads(registry.multi.blobs[registry.multi.manifest_digest])["layers"][0]
    assert f"pull {layer['digest'][7:19]}" in tty_text  # a bar per blob, on stderr only
