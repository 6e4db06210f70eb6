"""A container's status from LXC's state and the supervisor's files: a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lxcri_core.containers.record import exit_status
from lxcri_core.containers.status import ExitDoc, Status, derive_status, describe

E0 = ExitDoc(0, "2026-01-01T00:00:00+00:00")
E137 = ExitDoc(137, "2026-01-01T00:00:00+00:00", restarts=2)
FAILED = ExitDoc(None, "2026-01-01T00:00:00+00:00", start_failed=True, error="no userns")

CASES = [
    # lxc state, exit.json, health, supervisor alive, has run -> state, exit code, health
    ("STOPPED", None, "", False, False, ("created", None, "")),
    ("RUNNING", None, "healthy", True, True, ("running", None, "healthy")),
    # the supervisor was killed: LXC still runs it; its health.json is stale
    ("RUNNING", None, "healthy", False, True, ("running", None, "")),
    ("RUNNING", E137, "", True, True, ("running", None, "")),  # a restarted run
    ("FROZEN", None, "healthy", True, True, ("paused", None, "")),
    ("STOPPED", E137, "", True, True, ("restarting", 137, "")),  # in the back-off
    ("STOPPED", None, "", True, False, ("restarting", None, "")),  # about to start
    ("STARTING", E0, "", True, True, ("restarting", 0, "")),
    ("STOPPED", E0, "unhealthy", False, True, ("exited", 0, "")),
    ("STOPPED", E137, "", False, True, ("exited", 137, "")),
    # killed supervisor, then the process ended: it ran, its status is unknown
    ("STOPPED", None, "", False, True, ("exited", None, "")),
    # LXC could not start it: the process never ran (docker says "created")
    ("STOPPED", FAILED, "", False, True, ("created", None, "")),
    ("SOMETHING", None, "", False, False, ("created", None, "")),
]


@pytest.mark.parametrize(("lxc", "doc", "health", "sup", "ran", "want"), CASES)
def test_derive_status(lxc, doc, health, sup, ran, want):
    st = derive_status(lxc, doc, health, sup, ran)
    assert (st.state, st.exit_code, st.health) == want


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _at(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("st", "started", "finished", "want"),
    [
        (Status("running", None, ""), _at(minutes=3), "", "Up 3 minutes"),
        (Status("running", None, "healthy"), _at(seconds=5), "", "Up 5 seconds (healthy)"),
        (Status("running", None, ""), _at(seconds=0.2), "", "Up Less than a second"),
        (Status("running", None, ""), _at(hours=2), "", "Up 2 hours"),
        (Status("paused", None, ""), _at(minutes=1), "", "Up About a minute (Paused)"),
        (Status("exited", 137, ""), _at(minutes=9), _at(minutes=5), "Exited (137) 5 minutes ago"),
        (Status("exited", None, ""), _at(days=3), "", "Exited (unknown) 3 days ago"),
        (Status("restarting", 1, ""), "", _at(seconds=2), "Restarting (1) 2 seconds ago"),
        (Status("created", None, ""), "", "", "Created"),
        (Status("running", None, ""), "garbage", "", "Up"),
    ],
)
def test_describe_like_docker_ps(st, started, finished, want):
    assert describe(st, started, finished, NOW) == want


def test_exit_doc_from_json_tolerates_garbage():
    assert ExitDoc.from_json({}) is None
    doc = ExitDoc.from_json({"exit_code": "x", "restarts": "y", "finished": None})
    assert doc == ExitDoc(None, "", 0)


@pytest.mark.parametrize(
    ("rc", "killed", "want"),
    [
        (0, False, 0),
        (3, False, 3),
        (1, True, 137),
        (0, True, 0),
        (-9, False, 137),
        (-15, False, 143),
    ],
)
def test_exit_status(rc, killed, want):
    assert exit_status(rc, killed) == want
