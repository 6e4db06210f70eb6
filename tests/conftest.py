"""Shared fixtures. Every test runs with its own LXCRI_ROOT, config and auth
file under tmp, so the real /etc/lxcri and /var/lib/lxcri are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.support.ovslab import ovs  # noqa: F401 - the session's Open vSwitch

# The zfs-fuse fixtures are session-scoped: defined once here, so the whole
# session shares one daemon and one pool (imported into several modules, each
# copy was a fixture of its own and made a second pool of the same name).
from tests.support.zfs import zfs_dataset, zfs_fuse, zfs_pool  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "lxcri-root"
    cfg = tmp_path / "lxcri-config.yaml"
    # A second run of the suite at the same time on this host (the trixie root, see
    # tests/trixie/inside) has a bridge of its own: two lxcri roots on one bridge
    # would lease the same addresses.
    bridge = os.environ.get("LXCRI_TEST_BRIDGE")
    subnet = os.environ.get("LXCRI_TEST_BRIDGE_SUBNET")
    cfg.write_text(f"bridge: {bridge}\nbridge_subnet: {subnet}\n" if bridge and subnet else "")
    monkeypatch.setenv("LXCRI_ROOT", str(root))
    monkeypatch.setenv("LXCRI_CONFIG", str(cfg))
    monkeypatch.setenv("LXCRI_AUTH_FILE", str(tmp_path / "auth.json"))
    # every test's root hands out VMIDs from 100: Proxmox's vethVMIDi0 names would clash
    # between tests running at once (tests/network/test_net_setup.py asks for them)
    monkeypatch.setenv("LXCRI_VETH_NAMES", "lxc")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "containers-auth.json"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    yield root


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the lxcri CLI in-process (fast); stdout and stderr kept apart."""
    from lxcri_pve.cli.main import cli as group

    return CliRunner(mix_stderr=False).invoke(
        group, list(args), input=input, catch_exceptions=False
    )


def lxcri_exe() -> str:
    """The ``lxcri`` console script: the venv's, or the launcher tests/trixie/inside wrote."""
    return os.environ.get("LXCRI_TEST_EXE") or str(Path(sys.executable).parent / "lxcri")


def run_lxcri(
    *args: str, input: str | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``lxcri`` as a real process (exit codes, signals, argv)."""
    return subprocess.run(
        [lxcri_exe(), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
