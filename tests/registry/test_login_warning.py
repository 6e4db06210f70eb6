"""A warning a person sees is one plain line, also when stderr is not a terminal."""

from __future__ import annotations

import json

from tests.conftest import run_lxcri
from tests.registry.conftest import Populated


def test_login_warning_is_one_readable_line(registry: Populated) -> None:
    proc = run_lxcri(
        "login", "-u", "bob", "--password-stdin", "--insecure", registry.addr, input="pw-x9\n"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # before: a JSON log record ({"registry": ..., "event": ..., "level": "warning", ...})
    assert lines[0] == (
        "lxcri: warning: registry needs no credentials; storing them anyway "
        f"(registry={registry.addr})"
    )
    assert lines[1].startswith("Login succeeded") and len(lines) == 2
    assert "pw-x9" not in proc.stderr


def test_info_records_are_readable_unless_json_is_asked(registry: Populated) -> None:
    """Records for people by default (was: JSON whenever stderr was not a TTY); JSON
    lines, every record, with --log-format json (LXCRI_LOG_FORMAT, log_format)."""
    args = ("login", "-u", "bob", "--password-stdin", "--insecure", registry.addr)
    proc = run_lxcri("--log-level", "info", *args, input="pw-x9\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("lxcri: warning: ") and "logged in" in lines[1]
    assert not any(ln.startswith("{") for ln in lines)
    proc = run_lxcri("--log-level", "info", "--log-format", "json", *args, input="pw-x9\n")
    records = [json.loads(ln) for ln in proc.stderr.strip().splitlines()[:-1]]
    assert [r["level"] for r in records] == ["warning", "info"]
