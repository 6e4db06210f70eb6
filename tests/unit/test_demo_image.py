"""The bundled demo image is a valid OCI image that skopeo reads."""

from __future__ import annotations

import json
import subprocess

from lxcri_pve.demo_image import build_demo_layout


def test_demo_image_is_valid_oci(tmp_path):
    digest = build_demo_layout(tmp_path / "l")
    out = subprocess.run(
        ["skopeo", "inspect", f"oci:{tmp_path / 'l'}:latest"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out)
    assert info["Digest"] == digest
    assert info["Os"] == "linux" and len(info["Layers"]) == 1
    config = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--config", f"oci:{tmp_path / 'l'}:latest"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert config["config"]["Entrypoint"][0] == "/bin/httpd"
    assert "80/tcp" in config["config"]["ExposedPorts"]


def test_demo_build_is_reproducible(tmp_path):
    assert build_demo_layout(tmp_path / "a") == build_demo_layout(tmp_path / "b")
