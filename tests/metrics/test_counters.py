"""The pull/hook counters file: exact under concurrent writers, and safe from a local user."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from lxcri_core.metrics import counters

NOBODY = 65534


def _record_many(root: Path, n: int) -> subprocess.Popen[bytes]:
    code = (
        "import sys\n"
        "from lxcri_core.metrics import counters\n"
        f"ok = all(counters.record({str(root)!r}, 'hook', 'pre-start', 0.02, True)"
        f" for _ in range({n}))\n"
        "sys.exit(0 if ok else 1)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_concurrent_writers_lose_no_observation(tmp_path: Path) -> None:
    procs = [_record_many(tmp_path, 40) for _ in range(6)]
    assert [p.wait(60) for p in procs] == [0] * 6
    s = counters.read(tmp_path)["hook"]["pre-start"]
    assert s["count"] == 240 and s["failed"] == 0
    assert sum(s["buckets"]) == 240
    assert s["buckets"][counters.BUCKETS["hook"].index(0.025)] == 240  # 0.02 s <= 0.025
    mdir = tmp_path / counters.DIRNAME
    assert stat.S_IMODE(mdir.stat().st_mode) == 0o700  # no one else may even open the lock
    assert not (tmp_path / counters.DIRNAME / ".counters.json.tmp").exists()


def test_histogram_buckets_and_failures(tmp_path: Path) -> None:
    for secs, ok in ((0.3, True), (45.0, False), (9999.0, True)):
        assert counters.record(tmp_path, "pull", "127.0.0.1:5000", secs, ok)
    s = counters.read(tmp_path)["pull"]["127.0.0.1:5000"]
    bounds = counters.BUCKETS["pull"]
    assert s["count"] == 3 and s["failed"] == 1 and s["sum"] == 0.3 + 45.0 + 9999.0
    assert s["buckets"][bounds.index(0.5)] == 1
    assert s["buckets"][bounds.index(60.0)] == 1
    assert s["buckets"][-1] == 1  # +Inf


def test_series_are_capped(tmp_path: Path) -> None:
    for i in range(counters.MAX_SERIES + 5):
        counters.record(tmp_path, "pull", f"reg{i}.example", 1.0, True)
    pulls = counters.read(tmp_path)["pull"]
    assert len(pulls) == counters.MAX_SERIES + 1
    assert pulls[counters.OTHER]["count"] == 5


def _forged(root: Path) -> Path:
    mdir = root / counters.DIRNAME
    mdir.mkdir(mode=0o700)
    forged = {
        "pull": {"evil": {"count": 999, "failed": 0, "sum": 1.0, "buckets": [999] + [0] * 11}}
    }
    f = mdir / counters.FILENAME
    f.write_text(json.dumps(forged))
    return f


def test_a_directory_of_another_user_is_neither_read_nor_written(tmp_path: Path) -> None:
    f = _forged(tmp_path)
    os.chown(f.parent, NOBODY, NOBODY)
    os.chown(f, NOBODY, NOBODY)
    assert counters.read(tmp_path) == {}  # the forged counts are not exported
    assert not counters.record(tmp_path, "pull", "docker.io", 1.0, True)
    assert "evil" in f.read_text() and "docker.io" not in f.read_text()


def test_a_world_writable_directory_is_refused(tmp_path: Path) -> None:
    f = _forged(tmp_path)
    os.chmod(f.parent, 0o777)
    assert counters.read(tmp_path) == {}
    assert not counters.record(tmp_path, "hook", "pre-start", 0.1, True)


def test_a_file_of_another_user_is_not_read(tmp_path: Path) -> None:
    f = _forged(tmp_path)
    os.chown(f, NOBODY, NOBODY)
    assert counters.read(tmp_path) == {}


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    mdir = tmp_path / "r" / counters.DIRNAME
    mdir.mkdir(parents=True, mode=0o700)
    (mdir / counters.FILENAME).symlink_to(victim)
    (mdir / ".counters.json.tmp").symlink_to(victim)
    assert counters.read(tmp_path / "r") == {}  # a symlinked file is not read
    assert counters.record(tmp_path / "r", "hook", "pre-start", 0.1, True)
    assert victim.read_text() == "precious\n"  # replaced the links, wrote nothing through them
    assert not (mdir / counters.FILENAME).is_symlink()
    # the lock too, and the directory itself
    (mdir / counters.LOCKNAME).unlink()
    (mdir / counters.LOCKNAME).symlink_to(tmp_path / "created-through-link")
    assert not counters.record(tmp_path / "r", "hook", "pre-start", 0.1, True)
    assert not (tmp_path / "created-through-link").exists()
    other = tmp_path / "o"
    other.mkdir()
    (other / counters.DIRNAME).symlink_to(mdir)
    assert not counters.record(other, "hook", "pre-start", 0.1, True)
    assert counters.read(other) == {}


def test_a_held_lock_delays_a_writer_at_most_a_second(tmp_path: Path) -> None:
    assert counters.record(tmp_path, "hook", "pre-start", 0.1, True)
    fd = os.open(tmp_path / counters.DIRNAME / counters.LOCKNAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        assert not counters.record(tmp_path, "hook", "pre-start", 0.1, True)
        assert time.monotonic() - t0 < counters.LOCK_WAIT + 0.5
    finally:
        os.close(fd)
    assert counters.read(tmp_path)["hook"]["pre-start"]["count"] == 1


def test_a_corrupt_file_reads_as_empty_and_is_started_again(tmp_path: Path) -> None:
    mdir = tmp_path / counters.DIRNAME
    mdir.mkdir(mode=0o700)
    (mdir / counters.FILENAME).write_text('{"hook": {"pre-start": {"count": "lots"}}')
    assert counters.read(tmp_path) == {}
    assert counters.record(tmp_path, "hook", "pre-start", 0.1, True)
    assert counters.read(tmp_path)["hook"]["pre-start"]["count"] == 1
