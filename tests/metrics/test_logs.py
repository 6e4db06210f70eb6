"""Log records: readable for people by default, JSON when asked or for the journal,
with the container they concern; hook logs rotated and shown by ``lxcri logs --hooks``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.hooks.hooklog import HOOK_LOG_MAX
from lxcri_core.log import bind_container, get_logger, setup_logging
from lxcri_core.spec.options import RunOptions
from tests.conftest import lxcri_exe, run_lxcri
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv
from tests.support.registry import Registry, start_registry


@pytest.fixture
def open_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A registry that needs no credentials (``lxcri login`` warns about it)."""
    with monkeypatch.context() as m:  # docker-registry reads REGISTRY_* as its config
        m.delenv("REGISTRY_AUTH_FILE", raising=False)
        reg = start_registry(tmp_path / "reg")
    try:
        yield reg
    finally:
        reg.stop()


def _login(reg: Registry, *flags: str, env: dict[str, str] | None = None) -> list[str]:
    p = run_lxcri(
        "--log-level", "info", *flags, "login", "--insecure", "-u", "bob", "--password-stdin",
        reg.addr, input="pw-not-needed\n", env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    *records, said = p.stderr.splitlines()  # the log records, then the command's own words
    assert said.startswith("Login succeeded")
    return records


def test_login_warns_people_in_one_readable_line_when_stderr_is_a_pipe(
    open_registry: Registry,
) -> None:
    lines = _login(open_registry)
    assert lines[0] == (
        "lxcri: warning: registry needs no credentials; storing them anyway "
        f"(registry={open_registry.addr})"
    )
    assert len(lines) == 2 and "logged in" in lines[1]
    assert not any(line.lstrip().startswith("{") for line in lines)  # no JSON for people
    assert "pw-not-needed" not in "\n".join(lines)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_json_lines_when_asked(open_registry: Registry, how: str) -> None:
    flags = ("--log-format", "json") if how == "flag" else ()
    env = {"LXCRI_LOG_FORMAT": "json"} if how == "env" else None
    docs = [json.loads(line) for line in _login(open_registry, *flags, env=env)]
    assert [(d["level"], d["event"]) for d in docs] == [
        ("warning", "registry needs no credentials; storing them anyway"),
        ("info", "logged in"),
    ]
    assert docs[1]["registry"] == open_registry.addr


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    p = run_lxcri("images", env={"LXCRI_LOG_FORMAT": "xml"})
    assert p.returncode == 1
    assert p.stderr == "lxcri: error: log format 'xml' is not text or json\n"


def test_under_systemd_records_go_to_the_journal(open_registry: Registry, tmp_path: Path) -> None:
    """JOURNAL_STREAM names stderr: the journal reads it, as JSON lines (this host has
    no python3-systemd; with it, records go to the journal with their fields)."""
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        st = os.fstat(f.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        args = ["--log-level", "info", "login", "--insecure", "-u", "bob", "--password-stdin"]
        p = subprocess.run(
            [lxcri_exe(), *args, open_registry.addr],
            input="x\n", stdout=subprocess.PIPE, stderr=f, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert p.returncode == 0
    try:
        import systemd.journal  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        docs = [json.loads(line) for line in err.read_text().splitlines()[:-1]]
        assert [d["event"] for d in docs] == [
            "registry needs no credentials; storing them anyway",
            "logged in",
        ]
    else:
        assert err.read_text().startswith("Login succeeded")  # records: to the journal


def test_records_carry_the_bound_container(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", json=True)
    log = get_logger("t")
    with bind_container("web", 101):
        log.info("inside", step=1)
        log.warning("own container wins", container="other")
    log.info("outside")
    docs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (docs[0]["container"], docs[0]["vmid"]) == ("web", 101)
    assert docs[1]["container"] == "other"
    assert "container" not in docs[2] and "vmid" not in docs[2]


@pytest.mark.slow
def test_hook_log_rotates_and_logs_hooks_shows_it(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    lxenv.start("h1", args=("exec sleep 300",))
    hooks = lxenv.state_dir("h1") / "hooks.log"
    first = hooks.read_text()
    assert "pre-start" in first
    p = lxcri("logs", "--hooks", "h1")
    assert p.returncode == 0 and p.stdout == first
    cfg = lxenv.config()
    engine.stop(cfg, "h1", timeout=2)
    with open(hooks, "a") as f:  # a container that restarted for a long time
        f.write(("x" * 99 + "\n") * (HOOK_LOG_MAX // 100 + 10))
    engine.start(cfg, "h1")
    rotated = lxenv.state_dir("h1") / "hooks.log.1"
    assert rotated.stat().st_size > HOOK_LOG_MAX
    assert hooks.stat().st_size < 4096 and "pre-start" in hooks.read_text()
    every = lxcri("logs", "--hooks", "h1").stdout
    assert every == rotated.read_text() + hooks.read_text()
    last = lxcri("logs", "--hooks", "--tail", "1", "h1").stdout
    assert last == hooks.read_text().splitlines(keepends=True)[-1]
    with open(hooks, "a") as f:  # a line quoting what a hostile image declared
        f.write("pre-start: volume /data\x1b]0;owned\x07\x1b[2J failed\n")
    shown = lxcri("logs", "--hooks", "--tail", "1", "h1").stdout
    assert shown == "pre-start: volume /data?]0;owned??[2J failed\n"
    bad = lxcri("logs", "--hooks", "-f", "h1")
    assert bad.returncode == 2 and "--hooks takes --tail only" in bad.stderr


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://root@pam:s3cret@pve1:8006", "https://root@pam:***@pve1:8006"),
        ("https://root%40pam:s3cret@pve1", "https://root%40pam:***@pve1"),
        ("pull http://u:p@w@reg:5000/v2/ failed", "pull http://u:***@reg:5000/v2/ failed"),
        ("Authorization: Bearer abc.def-1", "Authorization: Bearer ***"),
        ("https://user@host/path@x", "https://user@host/path@x"),  # no password to hide
    ],
)
def test_error_text_masks_url_passwords_even_with_an_at_in_the_user(text: str, masked: str) -> None:
    from lxcri_core.log import redact_text

    assert redact_text(text) == masked


@pytest.mark.slow
def test_an_operation_on_a_container_names_it_in_its_records(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    """`rm NAME` of a container whose rootfs is gone warns; the JSON record says which
    container and VMID it is about, as the journal's CONTAINER_NAME would."""
    import secrets as random_ids

    engine.create(lxenv.config(), BUSYBOX_REF, RunOptions(name="tmpl", args=("true",)))
    lxenv.remember("tmpl")
    doc = json.loads((lxenv.state_dir("tmpl") / "lxcri.json").read_text())
    sdir = lxenv.state_dir("norootfs")
    sdir.mkdir(mode=0o700)
    doc.update(name="norootfs", id=random_ids.token_hex(32), vmid=0)  # one is allocated
    (sdir / "lxcri.json").write_text(json.dumps(doc))
    vmid = json.loads(lxcri("status", "norootfs", "-o", "json").stdout)["vmid"]
    p = lxcri("--log-format", "json", "rm", "norootfs")
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in p.stderr.splitlines()]
    assert records and all((r["container"], r["vmid"]) == ("norootfs", vmid) for r in records)
