"""structlog set-up: readable lines or JSON lines on stderr, the journal under systemd.

Where records go and how they look:

- the CLI (``setup_logging(..., people=True)``): warnings and errors one
  readable line each (``lxcri: warning: ...``), whatever stderr is (a
  terminal, a pipe into a person's ``less``, a CI log); other records
  readable too, unless ``log_format: json`` / ``LXCRI_LOG_FORMAT=json`` asks
  for JSON lines, which then holds for every record;
- a process whose stderr is the journal (systemd sets ``JOURNAL_STREAM`` to
  stderr's device and inode): each record to the journal with its fields
  (``CONTAINER_NAME``, ``LXCRI_VMID``, ...) through python3-systemd when it
  is installed, else as one JSON line on stderr (the journal keeps it);
- a library caller that never called ``setup_logging``: JSON when stderr is
  not a TTY (``LXCRI_LOG_FORMAT`` decides when set).

``bind_container`` puts ``container`` and ``vmid`` into every record of the
code it wraps (a hook run, a supervisor, an operation on one container).
Redaction is a processor, so every logger in the process gets it: keys that
look like secrets are replaced, and values that look like an HTTP
``Authorization`` header or a URL with a password are masked.
"""

from __future__ import annotations

import os
import re
import sys
from contextvars import ContextVar

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from typing import Any

    Sink = Callable[[str, str, str, dict[str, Any]], None]

SECRET_KEYS = re.compile(r"pass(word)?|secret|token|auth|credential|cookie", re.I)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)
#: a URL's userinfo (up to the authority's last ``@``: a user may hold one, ``root@pam``)
_URL_USERINFO = re.compile(r"://([^/\s]*)@")
REDACTED = "***"
# logging's level numbers, so that importing this module (every hook run does)
# does not import logging (~5 ms); structlog's set-up imports it when needed.
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50


def _mask_userinfo(m: re.Match[str]) -> str:
    user, colon, _password = m.group(1).partition(":")
    return f"://{user}{colon}{REDACTED if colon else ''}@"


def redact_text(text: str) -> str:
    """``text`` with Authorization header values and URL passwords masked: for error
    messages, which quote what a person gave (a ``pve_url`` with ``user:pass@``)."""
    result: str = _redact_value(text)
    return result


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return _URL_USERINFO.sub(_mask_userinfo, value)
    return value


#: ``container``/``vmid`` of the container the current code works on (``bind_container``).
_container: ContextVar[tuple[tuple[str, Any], ...]] = ContextVar("lxcri_container", default=())


class bind_container:
    """``with bind_container(name, vmid):`` every record inside carries both.

    A plain class over a ContextVar rather than structlog's contextvars: the
    hooks bind too, and must not import structlog for it.
    """

    def __init__(self, name: str, vmid: int | str | None = None) -> None:
        items: list[tuple[str, Any]] = [("container", name)]
        if vmid is not None and str(vmid) != "":
            items.append(("vmid", int(vmid) if str(vmid).isdigit() else vmid))
        self.items = tuple(items)
        self.token: Any = None

    def __enter__(self) -> bind_container:
        self.token = _container.set(self.items)
        return self

    def __exit__(self, *exc: object) -> None:
        _container.reset(self.token)

    def bind(self) -> None:
        """Bind for the rest of the process (a supervisor, a hook run)."""
        _container.set(self.items)


def add_container(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the bound container and vmid (a record's own win)."""
    for key, value in _container.get():
        event.setdefault(key, value)
    return event


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide secrets by key name and by value shape."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = REDACTED
        else:
            event[key] = _redact_value(event[key])
    return event


def _import_structlog() -> Any:
    """Import structlog without letting it pull in rich.

    structlog's dev module imports rich when it is installed (for pretty
    tracebacks); that costs tens of milliseconds and drags a UI library into
    the core, so rich is hidden for the duration of the import unless
    something already loaded it.
    """
    if "structlog" not in sys.modules:
        hidden = [m for m in ("rich", "better_exceptions") if m not in sys.modules]
        for m in hidden:
            sys.modules[m] = None  # type: ignore[assignment]
        try:
            import structlog
        finally:
            for m in hidden:
                del sys.modules[m]
    structlog = sys.modules["structlog"]
    global _applied
    # setup_logging()'s settings, or for a library caller that never called
    # it: warnings on stderr, never info lines on stdout (structlog's default)
    wanted = _settings or (os.environ.get("LXCRI_LOG_LEVEL", "warning"), env_json(), False)
    if _applied != wanted:
        _configure(structlog, *wanted)
        _applied = wanted
    return structlog


def env_json() -> bool | None:
    """``LXCRI_LOG_FORMAT``: True for json, False for text, None when unset (a TTY decides)."""
    fmt = os.environ.get("LXCRI_LOG_FORMAT", "").strip().lower()
    return True if fmt == "json" else False if fmt == "text" else None


def journal_on_stderr() -> bool:
    """Whether stderr is a stream systemd connected to the journal (``JOURNAL_STREAM``
    names its ``device:inode``; a child whose stderr was redirected is not)."""
    want = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = want.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


#: What setup_logging() asked for (level, json, people); applied when structlog
#: is first needed.
_settings: tuple[str, bool | None, bool] | None = None
_applied: tuple[str, bool | None, bool] | None = None


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is *now*.

    structlog's PrintLogger keeps the stream it was created with; when that
    stream is replaced and closed (pytest's capture, a daemon that redirects
    its output), later log calls would fail.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg

    @classmethod
    def factory(cls, *args: Any) -> _StderrLogger:
        return cls()


#: syslog priorities of the journal, per level
_JOURNAL_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}


class _JournalLogger:
    """Sends each record to the journal with its fields (python3-systemd)."""

    def __init__(self, send: Callable[..., Any]) -> None:
        self.send = send

    def msg(self, **event: Any) -> None:
        level = str(event.pop("level", "info"))
        text = str(event.pop("event", ""))
        event.pop("timestamp", None)  # the journal stamps it
        fields = {
            f"LXCRI_{re.sub(r'[^A-Z0-9_]', '_', str(k).upper())}": str(v) for k, v in event.items()
        }
        if "container" in event:
            fields["CONTAINER_NAME"] = str(event["container"])
        rest = " ".join(f"{k}={v}" for k, v in event.items() if k != "logger")
        self.send(
            f"{text} {rest}".strip(),
            PRIORITY=str(_JOURNAL_PRIORITY.get(level, 6)),
            SYSLOG_IDENTIFIER="lxcri",
            **fields,
        )

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _journal_send() -> Callable[..., Any] | None:
    """python3-systemd's ``journal.send`` when installed (optional)."""
    try:
        from systemd import journal  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    send: Callable[..., Any] = journal.send
    return send


def setup_logging(level: str = "warning", json: bool | None = None, people: bool = False) -> None:
    """Configure logging for the process; ``json=None`` means "not a TTY".

    ``people``: stderr is read by a person (the CLI): warnings and errors are
    one plain line each (``lxcri: warning: EVENT: key=value, ...``) whatever
    the format of the other records, which stay structured (JSON when not a
    TTY) for whoever collects them at ``--log-level info``/``debug``.

    structlog itself is imported (~35 ms) only when a call at or above
    ``level`` is made: most commands never log.
    """
    global _settings
    _settings = (level, json, people)
    if "structlog" in sys.modules:
        _import_structlog()  # already in use: apply now


#: Record fields a person's warning line leaves out (the line says them already).
_PLAIN_SKIP = ("event", "level", "timestamp", "logger")


def plain_line(event: MutableMapping[str, Any]) -> str:
    """One readable line for a warning or an error (already redacted)."""
    level = str(event.get("level", "warning"))
    level = "error" if level in ("critical", "exception") else level
    rest = ", ".join(f"{k}={v}" for k, v in event.items() if k not in _PLAIN_SKIP)
    text = " ".join(str(event.get("event", "")).split())  # one line, always
    if rest:
        text += f" ({' '.join(rest.split())})"
    return f"lxcri: {level}: {text}"


class _ForPeople:
    """A renderer: warnings and errors as ``plain_line``, the rest by ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        if _LEVELS.get(str(event.get("level", "")), 0) >= WARNING:
            return plain_line(event)
        return self.inner(logger, method, event)


def _configure(structlog: Any, level: str, json: bool | None, people: bool = False) -> None:
    import logging

    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = WARNING
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_container,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        redact,
    ]
    factory: Any = _StderrLogger.factory
    if journal_on_stderr():  # a systemd service: the journal reads stderr, not a person
        send = _journal_send()
        if send is not None:
            journal = _JournalLogger(send)
            structlog.configure(
                processors=[*processors, lambda _l, _m, ev: dict(ev)],
                wrapper_class=structlog.make_filtering_bound_logger(lvl),
                logger_factory=lambda *a: journal,
                cache_logger_on_first_use=False,
            )
            return
        json, people = True, False
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    if people:
        renderer = _ForPeople(renderer)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


_LEVELS = {
    "debug": DEBUG,
    "info": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "exception": ERROR,
    "critical": CRITICAL,
}
_sink: Sink | None = None


def _threshold() -> int:
    level = _settings[0] if _settings else os.environ.get("LXCRI_LOG_LEVEL", "warning")
    return _LEVELS.get(level.lower(), WARNING)


def _noop(*args: Any, **kw: Any) -> None:
    return None


def route_to(sink: Sink | None) -> None:
    """Send every log call to ``sink(level, logger, event, fields)`` instead of structlog.

    For short-lived processes with their own log file (the LXC hooks: LXC
    drops their stderr, and importing structlog would cost a third of a
    hook's time budget). Fields are redacted before the sink sees them.
    """
    global _sink
    _sink = sink


class _SinkMethod:
    def __init__(self, sink: Sink, level: str, name: str) -> None:
        self.sink, self.level, self.name = sink, level, name

    def __call__(self, event: str, *args: Any, **kw: Any) -> None:
        fields = dict(redact(None, self.level, add_container(None, self.level, dict(kw))))
        self.sink(self.level, self.name, str(event), fields)


class _LazyLogger:
    """A logger that imports structlog on its first use, not at module import.

    Hooks and the OCI runtime import core modules on every call; most of those
    calls never log, so they should not pay for importing structlog.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: Any = None

    def __getattr__(self, attr: str) -> Any:
        if _sink is not None:
            return _SinkMethod(_sink, attr, self._name)
        if _LEVELS.get(attr, CRITICAL) < _threshold():
            return _noop  # below the level anyway: no reason to import structlog
        if self._bound is None:
            self._bound = _import_structlog().get_logger()
        # bind per call: a bound logger freezes the configuration of its
        # time, and setup_logging() may run after this logger was created
        return getattr(self._bound.bind(logger=self._name), attr)


def get_logger(name: str) -> Any:
    """A structlog logger carrying ``logger=name``, imported lazily."""
    return _LazyLogger(name)
