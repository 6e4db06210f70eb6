"""``lxcri tui``'s options and configuration, and the CLI staying lazy: neither
``lxcri --help`` nor ``lxcri tui --help`` imports textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lxcri_core.config import Config, load_config
from lxcri_core.errors import ConfigError
from tests.conftest import invoke


def _cfg(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, env={})


def test_tui_config_fields(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "tui_refresh: 5\ntui_theme: light\n")
    assert (cfg.tui_refresh, cfg.tui_theme) == (5.0, "light")
    assert (_cfg(tmp_path, "").tui_refresh, _cfg(tmp_path, "").tui_theme) == (2.0, "dark")
    for bad, why in (
        ("tui_refresh: 0.05", "tui_refresh must be a number of seconds from 0.2 to 3600"),
        ("tui_refresh: fast", "tui_refresh must be"),
        ("tui_refresh: true", "tui_refresh must be"),
        ("tui_theme: blue", "tui_theme must be dark or light"),
    ):
        with pytest.raises(ConfigError, match=why):
            _cfg(tmp_path, bad)


def test_tui_options_are_checked_before_anything_starts() -> None:
    r = invoke("tui", "--refresh", "0.01")
    assert r.exit_code == 2 and "--refresh" in r.stderr
    r = invoke("tui", "--theme", "pink")
    assert r.exit_code == 2 and "--theme" in r.stderr
    assert "tui" in invoke("--help").stdout


def test_cli_help_imports_no_textual() -> None:
    code = (
        "import sys\n"
        "from lxcri_pve.cli.main import cli\n"
        "for args in (['--help'], ['tui', '--help']):\n"
        "    try:\n"
        "        cli.main(args, prog_name='lxcri')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "--refresh SECONDS" in out and "--theme [light|dark]" in out
    assert out.strip().splitlines()[-1] == "False"
