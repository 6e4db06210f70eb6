"""The stack commands' options through the real ``lxcri``: -f names the file in up, down
and ps, is --follow in `stack logs` (the file is --file there); a bad file is one line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import lxcri_exe


def lxcri(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LXCRI_ROOT": str(cwd / "root"), "LXCRI_BACKEND": "lxc"}
    return subprocess.run(
        [lxcri_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def test_ps_finds_compose_yaml_in_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {web: {image: busybox}}\n")
    p = lxcri(tmp_path, "stack", "ps", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []


def test_without_a_file_here_one_line_names_what_was_looked_for(tmp_path: Path) -> None:
    p = lxcri(tmp_path, "down")
    assert p.returncode == 1
    assert p.stderr == (
        "lxcri: error: no stack file here (compose.yaml, compose.yml, docker-compose.yaml, "
        "docker-compose.yml); name one with -f\n"
    )


def test_logs_f_is_follow_and_the_file_is_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("services: {web: {image: busybox, networks: [x]}}\n")
    p = lxcri(tmp_path, "stack", "logs", "--file", "s.yaml", "-f", "web")
    assert p.returncode == 1  # -f took no value: the file was read, and refused
    assert p.stderr == (
        "lxcri: error: s.yaml: services.web.networks: unknown key 'networks'; lxcri stacks "
        "know image, command, entrypoint, environment, env_file, ports, volumes, depends_on, "
        "restart, healthcheck, hostname, user, working_dir, labels, mem_limit, cpus here\n"
    )
    up = lxcri(tmp_path, "up", "-d", "-f", "s.yaml")
    assert up.returncode == 1 and up.stderr == p.stderr
