"""debian/rules installs every systemd unit in debian/ (lxcri.NAME.service or
.timer) with dh_installsystemd, never enabled nor started: a unit added later
(the exporter's) needs no change to rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _dry_run(debian: Path) -> str:
    r = subprocess.run(
        ["make", "-s", "-n", "-f", "debian/rules", "override_dh_installsystemd"],
        cwd=debian.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


def test_every_unit_in_debian_is_installed_disabled(tmp_path: Path) -> None:
    shutil.copytree(REPO / "debian", tmp_path / "debian")
    (tmp_path / "debian" / "lxcri.lxcri-new.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "debian" / "lxcri.lxcri-new.timer").write_text("[Timer]\nOnCalendar=daily\n")
    out = _dry_run(tmp_path / "debian")
    assert "dh_installsystemd --name=lxcri-auto-update --no-enable --no-start" in out
    assert "for u in lxcri-exporter lxcri-new; do" in out, out
    assert "--name=$u --no-enable --no-start" in out
    assert "--enable" not in out.replace("--no-enable", "")


def test_without_other_units_only_auto_update(tmp_path: Path) -> None:
    shutil.copytree(REPO / "debian", tmp_path / "debian")
    for f in (tmp_path / "debian").glob("lxcri.*.service"):
        if "auto-update" not in f.name:  # the exporter's too
            f.unlink()
    out = _dry_run(tmp_path / "debian")
    assert "for u in ; do" in out, out
