"""The stats and top parsers, from files recorded in tests/data/cgroup (see its README)."""

from __future__ import annotations

from pathlib import Path

from lxcri_core.containers.stats import (
    Sample,
    cgroup_dir,
    cgroup_files_dir,
    cpu_percent,
    parse_blkio_v1,
    parse_cgroup_mounts,
    parse_int,
    parse_io_stat_v2,
    parse_net_dev,
    parse_proc_cgroup,
    sample,
)
from lxcri_core.containers.top import (
    inside_uid,
    parse_cmdline,
    parse_stat_cpu,
    parse_uid_map,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "cgroup"


def test_v1_cgroup_paths_from_proc_and_the_mount_table() -> None:
    procs = parse_proc_cgroup((DATA / "v1" / "proc-pid-cgroup").read_text())
    mounts = parse_cgroup_mounts((DATA / "v1" / "mountinfo").read_text())
    assert procs["memory"] == "/lxc.payload.rec" and procs[""] == "/lxc.payload.rec"
    assert cgroup_dir("memory", procs, mounts) == "/sys/fs/cgroup/memory/lxc.payload.rec"
    assert cgroup_dir("cpuacct", procs, mounts) == "/sys/fs/cgroup/cpuacct/lxc.payload.rec"
    assert cgroup_dir("", procs, mounts) == "/sys/fs/cgroup/unified/lxc.payload.rec"


def test_a_mount_of_a_sub_cgroup_is_joined_below_its_root() -> None:
    mounts = parse_cgroup_mounts(
        "40 30 0:40 /lxc.payload.a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    )
    assert cgroup_dir("", {"": "/lxc.payload.a/x"}, mounts) == "/sys/fs/cgroup/x"


def test_v1_sample_from_recorded_files() -> None:
    s = sample(
        1, read=cgroup_files_dir(DATA / "v1"), mountinfo=(DATA / "v1" / "mountinfo").read_text()
    )
    assert s.cpu_ns == int((DATA / "v1" / "cpuacct.usage").read_text())
    assert s.memory_limit == 64 * 1024 * 1024
    assert s.memory == 634880  # total_inactive_file is 0 in that recording
    assert (s.pids, s.pids_limit) == (2, 50)
    assert (s.net_rx, s.net_tx) == (1954, 586)  # eth0 only, lo left out
    assert (s.block_read, s.block_write) == (0, 0)


def test_v2_sample_from_files_in_the_kernels_format() -> None:
    s = sample(
        1, read=cgroup_files_dir(DATA / "v2"), mountinfo=(DATA / "v2" / "mountinfo").read_text()
    )
    assert s.cpu_ns == 1523400 * 1000
    assert s.memory == 8388608 - 2097152  # inactive page cache left out
    assert s.memory_limit is None  # "max"
    assert (s.pids, s.pids_limit) == (3, None)
    assert (s.block_read, s.block_write) == (1048576 + 2048, 4096)


def test_blkio_sums_devices_and_skips_the_total_line() -> None:
    text = (DATA / "v1" / "blkio.devices-handmade").read_text()
    assert parse_blkio_v1(text) == (1056768 + 4096, 40960 + 8192)
    assert parse_io_stat_v2("8:0 rbytes=5 wbytes=7 rios=1\n") == (5, 7)


def test_limits_and_cpu_percent() -> None:
    assert parse_int("9223372036854771712\n") is None  # v1's "unlimited"
    assert parse_int("max") is None and parse_int("42\n") == 42
    a = Sample(0, 0, None, None, None, None, 0, 0, None, None)
    b = Sample(1_000_000_000, 500_000_000, None, None, None, None, 0, 0, None, None)
    assert cpu_percent(a, b) == 50.0
    assert cpu_percent(a, Sample(0, 1, None, None, None, None, 0, 0, None, None)) is None
    assert parse_net_dev("h1\nh2\n  eth0: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0\n") == (10, 20)


def test_top_parsers() -> None:
    ranges = parse_uid_map("         0     100000      65536\n")
    assert inside_uid(100033, ranges) == 33 and inside_uid(5, ranges) == 65534
    # a comm with spaces and a ")" must not shift the fields
    stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 2 3"
    assert parse_stat_cpu(stat, 100) == 3.0
    assert parse_cmdline(b"/bin/sh\0-c\0echo hi\0", "sh") == "/bin/sh -c echo hi"
    assert parse_cmdline(b"", "kworker") == "[kworker]"
