"""The exporter's bulk reading of container counters gives what ``lxcri stats`` reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.containers.stats import (
    cgroup_files_dir,
    inactive_file,
    parse_cgroup_mounts,
    parse_keyed,
    sample,
)
from lxcri_core.metrics.container_metrics import read_small

DATA = Path(__file__).resolve().parents[1] / "data" / "cgroup"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_mounts_parsed_once_read_the_same_as_stats(version: str) -> None:
    read = cgroup_files_dir(DATA / version)
    mountinfo = (DATA / version / "mountinfo").read_text()
    one = sample(1, read=read, mountinfo=mountinfo)
    bulk = sample(1, read, mounts=parse_cgroup_mounts(mountinfo), blkio=False)
    assert dataclasses.replace(one, time_ns=0, block_read=None, block_write=None) == (
        dataclasses.replace(bulk, time_ns=0)
    )


_KEYS = st.sampled_from(
    ["cache", "rss", "inactive_file", "total_inactive_file", "active_file", "x_inactive_file"]
)


@given(st.dictionaries(_KEYS, st.integers(0, 1 << 40)))  # the kernel names each key once
def test_inactive_file_agrees_with_the_full_parse(lines: dict[str, int]) -> None:
    text = "".join(f"{k} {v}\n" for k, v in lines.items())
    full = parse_keyed(text)
    want = full.get("total_inactive_file", full.get("inactive_file"))
    got = inactive_file(text)
    assert next(iter(got.values()), None) == want


def test_read_small_reads_whole_files_and_none_for_missing(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("x" * 200_000)
    assert read_small(str(big)) == "x" * 200_000
    assert read_small(str(tmp_path / "gone")) is None
    assert read_small("/proc/self/net/dev") is not None
