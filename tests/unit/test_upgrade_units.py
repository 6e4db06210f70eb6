"""The auto-update systemd units in debian/ run a real lxcri command, and the timer
starts that service; ``keep_generations`` is validated."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxcri_pve.cli.main import cli

from lxcri_core.config import load_config
from lxcri_core.errors import ConfigError

DEBIAN = Path(__file__).resolve().parents[2] / "debian"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEBIAN / f"lxcri.{name}").read_text())
    return parser


def test_auto_update_service_runs_an_existing_command() -> None:
    svc = _unit("lxcri-auto-update.service")
    argv = shlex.split(svc["Service"]["ExecStart"])
    assert argv[0] == "/usr/bin/lxcri" and svc["Service"]["Type"] == "oneshot"
    r = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert r.exit_code == 0, r.output
    assert "opted in" in r.output


def test_timer_starts_the_service_and_is_not_enabled_by_the_package() -> None:
    timer = _unit("lxcri-auto-update.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"
    rules = (DEBIAN / "rules").read_text()
    assert "dh_installsystemd --name=lxcri-auto-update --no-enable --no-start" in rules


@pytest.mark.parametrize("value", ["0", "-1", "true", "'2'", "101"])
def test_keep_generations_refuses_what_would_lose_the_rollback(tmp_path: Path, value: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"keep_generations: {value}\n")
    with pytest.raises(ConfigError, match="keep_generations must be an integer from 1 to 100"):
        load_config(env={"LXCRI_CONFIG": str(f)})


def test_keep_generations_is_read(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("keep_generations: 5\n")
    assert load_config(env={"LXCRI_CONFIG": str(f)}).keep_generations == 5
