"""``lifecycle.wait_healthy``/``lifecycle.upgrade`` over recorded status sequences: when an
upgraded container counts as running, and when it is rolled back (and said why)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lxcri_core import lifecycle
from lxcri_core.backend import ContainerStatus, CtRef, UpgradeRequest, UpgradeResult


class Recorded:
    """Statuses as a backend reported them, one per ``status`` call (the last repeats)."""

    name = "recorded"

    def __init__(self, statuses: Sequence[ContainerStatus], started: bool = True) -> None:
        self.statuses = list(statuses)
        self.started = started
        self.calls: list[str] = []

    def status(self, ref: CtRef) -> ContainerStatus:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def upgrade(self, ref: CtRef, req: UpgradeRequest) -> UpgradeResult:
        self.calls.append("upgrade")
        return UpgradeResult(100, "web", "img", "sha256:old", "sha256:new", "upgraded",
                             started=self.started)  # fmt: skip

    def rollback(self, ref: CtRef) -> UpgradeResult:
        self.calls.append("rollback")
        return UpgradeResult(100, "web", "img", "sha256:new", "sha256:old", "rolled-back")

    def start(self, ref: CtRef) -> None:
        self.calls.append("start")


def st(status: str = "running", **kw: object) -> ContainerStatus:
    return ContainerStatus(vmid=100, name="web", id="100", status=status, **kw)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def wait(backend: Recorded, timeout: float = 10) -> str | None:
    c = Clock()
    return lifecycle.wait_healthy(backend, CtRef("100"), timeout, clock=c, sleep=c.sleep)  # type: ignore[arg-type]


def test_running_without_healthcheck_counts_after_settling() -> None:
    assert wait(Recorded([st()])) is None


def test_exited_process_fails_with_its_status() -> None:
    why = wait(Recorded([st(), st("exited", exit_code=3)]))
    assert why == "the new image's process exited with status 3"


def test_a_restart_fails_even_when_running_again() -> None:
    why = wait(Recorded([st(), st(restarts=1)]))
    assert why == "the new image's process exited and was restarted"


def test_healthcheck_must_pass_within_the_timeout() -> None:
    assert wait(Recorded([st(health="starting"), st(health="healthy")])) is None
    why = wait(Recorded([st(health="starting")]), timeout=5)
    assert why == "the new image's healthcheck did not pass within 5 s"
    assert wait(Recorded([st(health="unhealthy")])) == "the new image's healthcheck failed"


def test_upgrade_rolls_back_and_starts_the_old_image() -> None:
    b = Recorded([st(), st("exited", exit_code=1)])
    c = Clock()
    res = lifecycle.upgrade(b, CtRef("web"), UpgradeRequest(), clock=c, sleep=c.sleep)  # type: ignore[arg-type]
    assert res.outcome == "rolled-back" and res.started
    assert res.message == "the new image's process exited with status 1; rolled back to sha256:old"
    assert b.calls == ["upgrade", "rollback", "start"]


def test_upgrade_of_a_stopped_container_is_not_waited_for() -> None:
    b = Recorded([st("exited")], started=False)
    res = lifecycle.upgrade(b, CtRef("web"), UpgradeRequest())  # type: ignore[arg-type]
    assert res.outcome == "upgraded" and b.calls == ["upgrade"]
    assert dataclasses.asdict(res)["new_digest"] == "sha256:new"
