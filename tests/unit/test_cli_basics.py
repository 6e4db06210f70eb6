"""The top-level CLI: version, help, completion, error conventions."""

from __future__ import annotations

from lxcri_core import __version__
from tests.conftest import invoke, run_lxcri


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and __version__ in res.stdout


def test_help_lists_every_command():
    res = invoke("--help")
    for cmd in ("pull", "push", "images", "run", "list", "exec", "completion", "unpack"):
        assert cmd in res.stdout


def test_completion_script():
    res = invoke("completion", "bash")
    assert res.exit_code == 0 and "_LXCRI_COMPLETE" in res.stdout


def test_usage_error_exits_2_and_domain_error_exits_1():
    assert run_lxcri("no-such-command").returncode == 2
    proc = run_lxcri("inspect", "localhost/does-not-exist:1")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "not found" in proc.stderr


def test_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: btrfs\n")
    proc = run_lxcri("--config", str(bad), "images")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("lxcri: error:") and len(proc.stderr.splitlines()) == 1


def test_read_only_state_root_is_one_line(tmp_path):
    root = tmp_path / "root-is-a-file"
    root.write_text("")
    proc = run_lxcri("import", str(tmp_path), "--name", "x/y:1", env={"LXCRI_ROOT": str(root)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("lxcri: error:") and len(proc.stderr.splitlines()) == 1
