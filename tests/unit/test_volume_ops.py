"""Volume bookkeeping without containers: names, sizes, the create/remove lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.containers import volume_ops
from lxcri_core.containers.volume_ops import (
    check_volume_name,
    list_volumes,
    prune_volumes,
    remove_volume,
    tree_size,
    volumes_locked,
)
from lxcri_core.errors import BackendError


@pytest.mark.parametrize("name", ["..", ".", "../containers", "a/b", "data\n", "", "-x", ".lock"])
def test_bad_volume_names_are_refused(name: str) -> None:
    with pytest.raises(BackendError, match="invalid volume name"):
        check_volume_name(name)


def test_rm_of_a_path_outside_the_volumes_dir_touches_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "containers"
    victim.mkdir()
    (tmp_path / "volumes").mkdir()
    with pytest.raises(BackendError):
        remove_volume(tmp_path, "../containers", force=True)
    assert victim.is_dir()


def test_a_symlinked_volume_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / "volumes").mkdir()
    (tmp_path / "volumes" / "evil").symlink_to(outside)
    assert [v.name for v in list_volumes(tmp_path)] == []
    with pytest.raises(BackendError, match="no such volume"):
        remove_volume(tmp_path, "evil", force=True)
    assert (outside / "keep").exists()


def test_tree_size_counts_files_once_and_follows_no_link(tmp_path: Path) -> None:
    tmp_path = tmp_path / "tree"  # tmp_path itself holds the suite's config file
    tmp_path.mkdir()
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 20)
    (tmp_path / "hard").hardlink_to(tmp_path / "a")
    (tmp_path / "link").symlink_to("/usr")
    assert tree_size(tmp_path) == 120


def test_prune_removes_unused_and_orphaned_volumes(tmp_path: Path) -> None:
    vols = tmp_path / "volumes"
    for n in ("data", f"anon-{'a' * 64}-0"):
        (vols / n).mkdir(parents=True)
    (vols / "data" / "f").write_bytes(b"z" * 10)
    removed = prune_volumes(tmp_path)
    assert sorted(v.name for v in removed) == ["anon-" + "a" * 64 + "-0", "data"]
    assert sum(v.size or 0 for v in removed) == 10
    assert [p.name for p in vols.iterdir()] == [".lock"]


def test_rm_waits_for_a_create_in_progress_then_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "volumes" / "data").mkdir(parents=True)
    monkeypatch.setattr(volume_ops, "LOCK_WAIT", 0.3)
    with volumes_locked(tmp_path, shared=True):  # what `create` holds
        with pytest.raises(BackendError, match="being created"):
            remove_volume(tmp_path, "data")
        with pytest.raises(BackendError, match="being created"):
            prune_volumes(tmp_path)
    assert (tmp_path / "volumes" / "data").is_dir()
    remove_volume(tmp_path, "data")
    assert not (tmp_path / "volumes" / "data").exists()
