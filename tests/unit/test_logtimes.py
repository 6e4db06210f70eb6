"""Time stamps of console.log: the stamper, the reader and --since."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lxcri_core.containers.logtimes import (
    LogStamper,
    Stamp,
    format_time,
    parse_since,
    parse_times,
    read_times,
    stamped_lines,
)
from lxcri_core.errors import BackendError

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
NS = 1_000_000_000


def test_lines_take_the_time_of_the_chunk_holding_their_first_byte() -> None:
    data = b"old\nfirst\nsec" + b"ond\nthird"
    stamps = [Stamp(4, 10), Stamp(14, 20)]
    assert stamped_lines(data, stamps) == [
        (None, b"old\n"),
        (10, b"first\n"),
        (10, b"second\n"),
        (20, b"third"),
    ]
    assert stamped_lines(b"x\n", stamps, base=20) == [(20, b"x\n")]


def test_a_torn_or_garbled_times_file_is_read_as_far_as_it_goes() -> None:
    assert parse_times("5 50\n0 10\nbad line\n7 7") == [Stamp(0, 10), Stamp(5, 50), Stamp(7, 7)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", NOW.timestamp() - 600),
        ("1h30m", NOW.timestamp() - 5400),
        ("45s", NOW.timestamp() - 45),
        ("2026-11-30T11:00:00Z", NOW.timestamp() - 3600),
        ("2026-11-30T12:00:00+01:00", NOW.timestamp() - 3600),
        ("1700000000", 1700000000),
    ],
)
def test_since_accepts_times_and_durations(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == int(expected) * NS


@pytest.mark.parametrize("text", ["yesterday", "10x", "", "-5m", "2026-13-01"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(BackendError, match="--since"):
        parse_since(text, NOW)


def test_format_is_rfc3339_with_nanoseconds() -> None:
    assert format_time(1700000000 * NS + 5) == "2023-11-14T22:13:20.000000005Z"


def test_stamper_notes_growth_not_what_was_there_before(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"from an older run\n")
    stamper = LogStamper(tmp_path, poll=0.02).start()
    time.sleep(0.1)
    before = time.time_ns()
    with open(log, "ab") as f:
        f.write(b"new line\n")
    time.sleep(0.1)
    stamper.stop()
    stamps = read_times(tmp_path)
    assert stamps is not None and [s.offset for s in stamps] == [18]
    assert before <= stamps[0].time_ns <= time.time_ns()
    lines = stamped_lines(log.read_bytes(), stamps)
    assert lines[0][0] is None and lines[1][0] == stamps[0].time_ns
    assert read_times(tmp_path / "missing") is None
