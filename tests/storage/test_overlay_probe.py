"""The overlay probe runs once per boot, not on every container create."""

from __future__ import annotations

from pathlib import Path

from lxcri_core.storage import overlay


def test_probe_result_is_kept_per_boot(tmp_path, monkeypatch):
    monkeypatch.setattr(overlay, "_probe_cache", {})
    assert overlay.overlay_supported(tmp_path) is True
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert (tmp_path / "overlay-probe").read_text() == f"{boot} 1"
    # a cached "no" from this boot is believed without mounting anything
    (tmp_path / "overlay-probe").write_text(f"{boot} 0")
    monkeypatch.setattr(overlay, "_probe_cache", {})
    assert overlay.overlay_supported(tmp_path) is False
    # one from another boot is not
    (tmp_path / "overlay-probe").write_text("another-boot 0")
    monkeypatch.setattr(overlay, "_probe_cache", {})
    assert overlay.overlay_supported(tmp_path) is True
