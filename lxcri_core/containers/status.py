"""A container's status, derived from what LXC and the supervisor left behind.

The inputs are read in bulk by ``listing`` (``lxc.states``: LXC's state of
all containers at once; each state directory's ``exit.json``, ``started.json``,
``health.json`` and the supervisor's pid); ``derive_status`` turns them into
one status and is pure, so it is table-tested and cheap for hundreds of
containers.

LXC's state comes first: a container whose supervisor was killed keeps
running under ``lxc-execute``, and is ``running``; when it ends after that,
nobody records its exit status, and it is ``exited`` with an unknown exit
code (it has a ``started.json``), never ``created``. A start that LXC
failed (``exit.json`` with ``start_failed``) leaves the container
``created``, as docker does; the process never ran, so it has no exit code.

States, as docker names them: ``created`` (never ran), ``running``,
``paused`` (LXC's FROZEN), ``restarting`` (between two runs of a restart
policy, or its supervisor starting it), ``exited``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

State = Literal["created", "running", "paused", "restarting", "exited"]

#: Exit status recorded when the process was SIGKILLed after its stop timeout
#: (128 + SIGKILL, as docker and a shell report it).
KILLED_EXIT_CODE = 137


@dataclass(frozen=True)
class ExitDoc:
    """``exit.json``: how the last run ended."""

    exit_code: int | None
    finished: str = ""
    restarts: int = 0
    #: LXC could not start the container: the process never ran
    start_failed: bool = False
    error: str = ""

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ExitDoc | None:
        if not doc:
            return None
        code = doc.get("exit_code")
        return cls(
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            finished=str(doc.get("finished") or ""),
            restarts=_int(doc.get("restarts")),
            start_failed=bool(doc.get("start_failed", False)),
            error=str(doc.get("error") or ""),
        )


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Status:
    state: State
    #: the last run's exit status; None while running, before a first run, or
    #: when the run ended unobserved (its supervisor was killed) or never started
    exit_code: int | None
    #: "", starting, healthy, unhealthy (only while running under a supervisor)
    health: str


def derive_status(
    lxc_state: str,
    exit_doc: ExitDoc | None,
    health: str,
    supervisor_alive: bool,
    has_run: bool,
) -> Status:
    """The status from LXC's state (``lxc-info -s``), ``exit.json``, ``health.json``'s
    status, whether the supervisor lives, and whether the container ever started."""
    code = exit_doc.exit_code if exit_doc else None
    if lxc_state == "FROZEN":
        return Status("paused", None, "")
    if lxc_state in ("RUNNING", "STOPPING", "ABORTING"):
        # a dead supervisor no longer updates health.json: what it says is stale
        return Status("running", None, health if supervisor_alive else "")
    if lxc_state in ("STARTING", "THAWED"):
        return Status("restarting" if exit_doc else "running", code, "")
    # STOPPED (or a state this code does not know: treated as not running)
    if supervisor_alive:
        # between runs (a back-off) or about to start the first one
        return Status("restarting", code, "")
    if exit_doc and exit_doc.start_failed:
        # LXC never ran the process: as docker, still "created" (the error is in inspect)
        return Status("created", None, "")
    if exit_doc:
        return Status("exited", code, "")
    if has_run:
        return Status("exited", None, "")  # it ran; its end went unrecorded
    return Status("created", None, "")


def human_duration(seconds: float) -> str:
    """Docker's human duration: "Less than a second", "5 seconds", "3 minutes", ..."""
    s = int(max(seconds, 0))
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    m = s // 60
    if m < 60:
        return "About a minute" if m == 1 else f"{m} minutes"
    h = round(s / 3600)
    if s < 48 * 3600:
        return "About an hour" if h == 1 else f"{h} hours"
    d = s // 86400
    if d < 14:
        return f"{d} days"
    if d < 60:
        return f"{d // 7} weeks"
    if d < 730:
        return f"{d // 30} months"
    return f"{d // 365} years"


def _since(stamp: str, now: datetime) -> float | None:
    try:
        return (now - datetime.fromisoformat(stamp)).total_seconds()
    except (TypeError, ValueError):
        return None


def describe(st: Status, started_at: str, finished_at: str, now: datetime) -> str:
    """The STATUS column as docker prints it: ``Up 3 minutes (healthy)``,
    ``Exited (137) 5 minutes ago``, ``Created``, ``Restarting (1) 2 seconds ago``."""
    if st.state in ("running", "paused"):
        up = _since(started_at, now)
        text = f"Up {human_duration(up)}" if up is not None else "Up"
        if st.state == "paused":
            return f"{text} (Paused)"
        return f"{text} ({st.health})" if st.health else text
    code = "unknown" if st.exit_code is None else str(st.exit_code)
    if st.state == "restarting":
        ago = _since(finished_at, now)
        return f"Restarting ({code}) {human_duration(ago)} ago" if ago is not None else "Restarting"
    if st.state == "exited":
        ago = _since(finished_at or started_at, now)
        return f"Exited ({code})" + (f" {human_duration(ago)} ago" if ago is not None else "")
    return "Created"
