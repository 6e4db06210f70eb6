"""``lxcri containerd-config``: the drop-in, the imports line, and containerd reading both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lxcri_core.errors import ConfigError
from lxcri_core.runtime.containerd import render_dropin, with_import
from tests.conftest import invoke


def test_dropin_versions() -> None:
    v2 = render_dropin(2, "lxcri", "/usr/bin/lxcri-runtime")
    assert "version = 2" in v2
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]' in v2
    assert 'runtime_type = "io.containerd.runc.v2"' in v2
    assert 'BinaryName = "/usr/bin/lxcri-runtime"' in v2
    v3 = render_dropin(3, "lxc-pods", "/usr/bin/lxcri-runtime")
    assert "version = 3" in v3
    assert '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.lxc-pods.options]' in v3


@pytest.mark.parametrize(
    ("name", "binary"),
    [('x"]\n[evil', "/usr/bin/x"), ("lxcri", 'https://x"\nBinaryName = "/tmp/evil'),
     ("lxcri", "relative/bin")],
)  # fmt: skip
def test_dropin_refuses_what_would_change_the_toml(name: str, binary: str) -> None:
    with pytest.raises(ConfigError):
        render_dropin(2, name, binary)


def test_imports_line() -> None:
    d = "/etc/containerd/conf.d/lxcri.toml"
    assert with_import(None, d, 2) == f'version = 2\nimports = ["{d}"]\n'
    main = 'version = 2\nroot = "/var/lib/containerd"\n[grpc]\n  address = "/x"\n'
    new = with_import(main, d, 2)
    assert new is not None
    assert new.splitlines()[:2] == ["version = 2", f'imports = ["{d}"]']
    assert with_import(new, d, 2) is None  # already there
    other = 'version = 2\nimports = ["/etc/containerd/other.toml"]\n[grpc]\n'
    assert f'imports = ["/etc/containerd/other.toml", "{d}"]' in (with_import(other, d, 2) or "")
    globbed = 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n'
    assert with_import(globbed, d, 3) is None


def test_write_and_containerd_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cdir = tmp_path / "etc-containerd"
    cdir.mkdir()
    (cdir / "config.toml").write_text('version = 2\n[grpc]\n  address = "/run/x.sock"\n')
    monkeypatch.setenv("LXCRI_CONTAINERD_CONFIG_DIR", str(cdir))
    monkeypatch.setenv("LXCRI_RUNTIME_NAME", "lxcri-test")
    res = invoke("containerd-config", "--write", "--binary", "/usr/bin/lxcri-runtime")
    assert res.exit_code == 0, res.stderr
    assert "updated" in res.stdout
    again = invoke("containerd-config", "--write", "--binary", "/usr/bin/lxcri-runtime")
    assert "imports it already" in again.stdout
    # containerd itself merges the import (the same parser a restart uses)
    dump = subprocess.run(
        ["/usr/bin/containerd", "--config", str(cdir / "config.toml"), "config", "dump"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    table = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri-test.options]'
    assert table in dump.stdout
    after = dump.stdout.split(table, 1)[1]
    assert 'BinaryName = "/usr/bin/lxcri-runtime"' in after.split("[", 1)[0]


def test_bad_version_is_a_usage_error() -> None:
    res = invoke("containerd-config", "--version", "4")
    assert res.exit_code == 2


def test_dropin_passes_the_pve_register_annotation() -> None:
    text = render_dropin(2, "lxcri", "/usr/bin/lxcri-runtime", pve_register=True)
    assert 'pod_annotations = ["org.lxcri.pve-register"]' in text
    assert 'container_annotations = ["org.lxcri.pve-register"]' in text
    res = invoke("containerd-config", "--pve-register", "--binary", "/usr/bin/lxcri-runtime")
    assert res.exit_code == 0 and "pod_annotations" in res.stdout
