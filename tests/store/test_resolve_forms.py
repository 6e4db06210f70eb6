"""One image resolver: every image command takes the same forms (store.resolve).

Before, ``lxcri inspect 381be580`` found an image by a digest prefix that
``lxcri unpack 381be580 DIR`` did not, and ``push`` took only names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.containers import create
from lxcri_core.images import import_image
from lxcri_core.store import Store
from tests.store.conftest import Sources, invoke

NAME = "docker.io/library/busybox:1.0"


def _forms(digest: str) -> list[str]:
    hexd = digest.split(":", 1)[1]
    return [
        NAME,  # full reference
        "busybox:1.0",  # short name
        "library/busybox:1.0",
        f"busybox@{digest}",  # name@digest
        digest,  # full digest
        hexd,  # the digest without its algorithm
        hexd[:12],  # the id `lxcri images` shows
        hexd[:8],  # a shorter unique prefix (`lxcri inspect 381be580`)
        f"sha256:{hexd[:6]}",
    ]


def test_every_command_takes_every_form(cfg: Config, sources: Sources, tmp_path: Path) -> None:
    digest = import_image(cfg, sources.layout, "busybox:1.0").descriptor.digest
    for i, form in enumerate(_forms(digest)):
        res = invoke("image", "inspect", "-o", "json", form)
        assert res.exit_code == 0 and digest in res.stdout, (form, res.stderr)
        res = invoke("unpack", form, str(tmp_path / f"u{i}"))
        assert res.exit_code == 0, (form, res.stderr)
        assert (tmp_path / f"u{i}" / "bin").exists()
        res = invoke("export", form, str(tmp_path / f"e{i}.tar"))
        assert res.exit_code == 0 and (tmp_path / f"e{i}.tar").stat().st_size > 0, form
        # run/create resolve through the same function before anything is created
        _, rec = create._resolve_image(cfg, form, False, False)
        assert rec.descriptor.digest == digest, form
        res = invoke("rmi", form)
        assert res.exit_code == 0, (form, res.stderr)
        assert not Store(cfg.image_store).images()
        import_image(cfg, sources.layout, "busybox:1.0")


@pytest.mark.parametrize("form", ["bus", "abc", "sha256:zz", "busybox"])
def test_no_command_takes_what_resolve_refuses(
    cfg: Config, sources: Sources, tmp_path: Path, form: str
) -> None:
    """Too short a prefix, not hex, or a tag that is not stored: one line, exit 1, all alike."""
    import_image(cfg, sources.layout, "busybox:1.0")
    for args in (
        ("image", "inspect", form),
        ("unpack", form, str(tmp_path / "u")),
        ("export", form, str(tmp_path / "e.tar")),
        ("rmi", form),
    ):
        res = invoke(*args)
        assert res.exit_code == 1 and res.stdout == "", args
        assert len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    assert not (tmp_path / "u").exists() and not (tmp_path / "e.tar").exists()
    assert [r.name for r in Store(cfg.image_store).images()] == [NAME]
