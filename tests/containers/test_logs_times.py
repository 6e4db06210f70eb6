"""`lxcri logs -t/--since` on a real supervised container."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from lxcri_core.containers import engine
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import LxcEnv, wait_for

pytestmark = pytest.mark.slow


def _when(stamp: str) -> float:
    return datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def test_timestamps_and_since(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    t0 = time.time()
    lxenv.start("lg", args=("echo one; sleep 2; echo two; exec sleep 60",))
    wait_for(lambda: "two" in lxcri("logs", "lg").stdout, what="the second line")
    p = lxcri("logs", "-t", "lg")
    assert p.returncode == 0, p.stderr
    (s1, l1), (s2, l2) = (line.split(" ", 1) for line in p.stdout.splitlines())
    assert (l1, l2) == ("one", "two")
    assert t0 - 1 <= _when(s1) <= _when(s2) - 1.5 and _when(s2) <= time.time()
    assert s1.endswith("Z") and len(s1) == len("2026-11-30T12:00:00.123456789Z")
    # a point between the two lines, as an RFC 3339 time and as a duration
    mid = datetime.fromtimestamp(_when(s1) + 1, UTC).isoformat()
    assert lxcri("logs", "--since", mid, "lg").stdout == "two\n"
    assert lxcri("logs", "--since", "10m", "lg").stdout == "one\ntwo\n"
    assert lxcri("logs", "-t", "--tail", "1", "lg").stdout.startswith(s2)
    engine.stop(lxenv.config(), "lg", timeout=0)
    # a restart appends; the old lines keep their times
    engine.start(lxenv.config(), "lg")
    wait_for(lambda: lxcri("logs", "lg").stdout.count("two") == 2, what="the second run")
    lines = lxcri("logs", "-t", "lg").stdout.splitlines()
    assert lines[:2] == [f"{s1} one", f"{s2} two"] and len(lines) == 4


def test_bad_since_is_one_line_and_exit_1(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("lg2", args=("echo x; exec sleep 60",))
    p = lxcri("logs", "--since", "last tuesday", "lg2")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "lxcri: error: --since 'last tuesday': give a time (2026-11-30T10:00:00Z) "
        "or a duration (10m, 1h30m)"
    ]


def test_output_of_an_older_lxcri_is_shown_without_times(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("lg3", args=("echo x; exec sleep 60",))
    wait_for(lambda: lxcri("logs", "lg3").stdout == "x\n", what="the line")
    (lxenv.state_dir("lg3") / "console.times").unlink()
    p = lxcri("logs", "-t", "lg3")
    assert p.returncode == 0 and p.stdout == "x\n"
    assert "has no time stamps" in p.stderr
    assert lxcri("logs", "--since", "1h", "lg3").stdout == ""
