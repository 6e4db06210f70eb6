"""debian/: the exporter's unit runs the real command, is installed, and is never enabled."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

from lxcri_pve.cli.main import COMMANDS

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "debian" / "lxcri.lxcri-exporter.service"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    cp.read_string(UNIT.read_text())
    return cp


def test_the_unit_starts_the_exporter_command() -> None:
    unit = _unit()
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0] == "/usr/bin/lxcri" and argv[1] in COMMANDS
    assert COMMANDS[argv[1]] == "lxcri_pve.cli.exporter_cmd:exporter"
    assert unit["Install"]["WantedBy"] == "multi-user.target"  # can be enabled by hand
    assert unit["Service"]["NoNewPrivileges"] == "yes"


def test_rules_install_it_but_never_enable_or_start_it() -> None:
    """debian/rules installs every ``debian/lxcri.NAME.service`` with its own
    ``dh_installsystemd --name=NAME --no-enable --no-start`` (tests/debian/test_rules.py
    runs that rule); the exporter's unit is named so that it is one of them."""
    rules = (REPO / "debian" / "rules").read_text()
    assert "wildcard debian/lxcri.*.service" in rules
    calls = re.findall(r"^\t+dh_installsystemd(.*)$", rules, re.M)
    assert calls and all("--no-enable --no-start" in c for c in calls)
