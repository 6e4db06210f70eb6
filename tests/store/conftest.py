"""Sources to import, made once per session: OCI layouts built in Python, and
oci-archive / docker-archive tars made from them by skopeo (a real peer)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lxcri_core.config import Config, load_config
from lxcri_core.store import Store
from tests.support.images import Built, busybox_image, multilayer_image, write_layout


@dataclass(frozen=True)
class Sources:
    layout: Path  # OCI layout dir, tag 1.0: busybox_image()
    built: Built
    multi_layout: Path  # OCI layout dir, tag 2.0: multilayer_image()
    multi: Built
    oci_archive: Path  # skopeo oci-archive of `layout`, ref name 1.0
    docker_archive: Path  # skopeo docker-archive of `multi_layout` as test/multi:2.0


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def skopeo_inspect(target: str) -> dict[str, object]:
    out = json.loads(skopeo("inspect", target))
    assert isinstance(out, dict)
    return out


def skopeo_manifest_digest(target: str) -> str:
    """The manifest digest skopeo sees for ``target`` (``--raw`` bytes hashed by it)."""
    return str(skopeo_inspect(target)["Digest"])


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    work = tmp_path_factory.mktemp("store-sources")
    layout, multi_layout = work / "oci", work / "multi"
    built = write_layout(layout, busybox_image(), tag="1.0")
    multi = write_layout(multi_layout, multilayer_image(), tag="2.0")
    oci_archive = work / "bb-oci.tar"
    skopeo("copy", "-q", f"oci:{layout}:1.0", f"oci-archive:{oci_archive}:1.0")
    docker_archive = work / "multi-docker.tar"
    skopeo(
        "copy", "-q", f"oci:{multi_layout}:2.0", f"docker-archive:{docker_archive}:test/multi:2.0"
    )
    return Sources(layout, built, multi_layout, multi, oci_archive, docker_archive)


@pytest.fixture
def cfg(isolated_env: Path) -> Config:
    return load_config()


@pytest.fixture
def store(cfg: Config) -> Store:
    return Store(cfg.image_store)


def store_state(store: Store) -> tuple[list[str], list[str], list[str]]:
    """(ref names, blob files, partial files): what a failed import must not change."""
    names = [r.name for r in store.images()] if (store.root / "index.json").exists() else []
    blobs = sorted(p.name for p in store.blobs_dir.iterdir()) if store.blobs_dir.exists() else []
    partials = (
        sorted(p.name for p in store.tmp_dir.glob("*.partial")) if store.tmp_dir.exists() else []
    )
    return names, blobs, partials


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in-process with stdout and stderr apart.

    tests/conftest.py's ``invoke`` says it keeps them apart, but click 8.1's
    CliRunner mixes stderr into stdout unless ``mix_stderr=False``.
    """
    from lxcri_pve.cli.main import cli as group

    return CliRunner(mix_stderr=False).invoke(
        group, list(args), input=input, catch_exceptions=False
    )
