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


def test_info_records_stay_structured(registry: Populated) -> None:
    proc = run_lxcri(
        "--log-level",
        "info",
        "login",
        "-u",
        "bob",
        "--password-stdin",
        "--insecure",
        registry.addr,
        input="pw-x9\n",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    warning = [ln for ln in lines if ln.startswith("lxcri: warning: ")]
    records = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert len(warning) == 1 and records and all(r["level"] == "info" for r in records)
