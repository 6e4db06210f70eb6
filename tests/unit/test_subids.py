"""``ensure_root_subids`` against real subuid/subgid files (in a temporary
``etc``): another user's range overlapping lxcri's map is refused, untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.containers.subids import ensure_root_subids
from lxcri_core.errors import ConfigError


def test_another_users_overlapping_range_is_refused(tmp_path: Path) -> None:
    debian = "alice:100000:65536\n"
    (tmp_path / "subuid").write_text(debian)
    (tmp_path / "subgid").write_text(debian)
    with pytest.raises(ConfigError) as e:
        ensure_root_subids(100000, 65536, tmp_path)
    msg = str(e.value)
    assert f"{tmp_path}/subuid gives user alice ids 100000-165535" in msg
    assert "usermod --del-subuids 100000-165535 alice" in msg and "\n" not in msg
    assert (tmp_path / "subuid").read_text() == debian  # nothing appended for root
    assert (tmp_path / "subgid").read_text() == debian


def test_a_partial_overlap_in_subgid_is_refused(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("root:100000:65536\n")
    (tmp_path / "subgid").write_text("root:100000:65536\nbob:165000:65536\n")
    with pytest.raises(ConfigError, match="subgid gives user bob ids 165000-230535"):
        ensure_root_subids(100000, 65536, tmp_path)


def test_disjoint_ranges_get_roots_entry(tmp_path: Path) -> None:
    for name in ("subuid", "subgid"):
        (tmp_path / name).write_text("alice:165536:65536\n1001:231072:65536")
    ensure_root_subids(100000, 65536, tmp_path)
    for name in ("subuid", "subgid"):
        lines = (tmp_path / name).read_text().splitlines()
        assert lines == ["alice:165536:65536", "1001:231072:65536", "root:100000:65536"]
    ensure_root_subids(100000, 65536, tmp_path)  # covered: unchanged
    assert (tmp_path / "subuid").read_text().count("root:") == 1


def test_a_chosen_map_must_be_delegated_to_root(tmp_path):
    from lxcri_core.containers.subids import check_root_subids

    (tmp_path / "subuid").write_text("root:100000:65536\nroot:200000:65536\n")
    (tmp_path / "subgid").write_text("root:100000:65536\n")
    with pytest.raises(ConfigError, match=r"subgid does not give root ids 200000-265535"):
        check_root_subids(200000, 65536, tmp_path)
    (tmp_path / "subgid").write_text("root:200000:65536\nalice:250000:10\n")
    with pytest.raises(ConfigError, match="alice"):  # another user's range inside the map
        check_root_subids(200000, 65536, tmp_path)
    (tmp_path / "subgid").write_text("root:200000:65536\n")
    check_root_subids(200000, 65536, tmp_path)
    assert (tmp_path / "subgid").read_text() == "root:200000:65536\n"  # checked, not changed
