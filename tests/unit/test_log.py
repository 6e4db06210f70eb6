from __future__ import annotations

import json

from lxcri_core.log import get_logger, setup_logging


def test_json_logs_redact_secrets(capsys):
    setup_logging("info", json=True)
    log = get_logger("t")
    log.info(
        "fetch",
        url="https://bob:hunter2@reg.io/v2/",
        password="hunter2",
        header="Bearer abc.def.ghi",
        token="t0k",
    )
    err = capsys.readouterr().err
    assert "hunter2" not in err and "abc.def.ghi" not in err and "t0k" not in err
    rec = json.loads(err.strip().splitlines()[-1])
    assert rec["event"] == "fetch" and rec["level"] == "info" and rec["logger"] == "t"


def test_level_filters(capsys):
    setup_logging("error", json=True)
    get_logger("t").info("quiet")
    assert capsys.readouterr().err == ""


def test_library_use_without_setup_logs_to_stderr_only():
    import subprocess
    import sys

    code = (
        "from lxcri_core.log import get_logger\n"
        "log = get_logger('x')\n"
        "log.info('quiet-info')\n"
        "log.warning('loud-warning')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == ""
    assert "loud-warning" in proc.stderr and "quiet-info" not in proc.stderr


def test_logger_follows_later_setup(capsys):
    log = get_logger("early")
    setup_logging("error", json=True)
    log.warning("hidden")
    setup_logging("debug", json=True)
    log.debug("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err and "shown" in err


def test_logs_follow_a_replaced_stderr(monkeypatch):
    import io
    import sys

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("info", json=True)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").info("after-swap")
    assert "after-swap" in second.getvalue()


def test_debug_calls_below_the_level_do_not_import_structlog():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lxcri_core.log import get_logger\n"
        "get_logger('x').info('nothing', token='t')\n"
        "print('structlog' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_route_to_sink_redacts(monkeypatch):
    from lxcri_core import log as core_log

    got = []
    monkeypatch.setattr(core_log, "_sink", None)
    core_log.route_to(lambda *a: got.append(a))
    try:
        get_logger("h").info("published", password="p4ss", port=80)
    finally:
        core_log.route_to(None)
    assert got == [("info", "h", "published", {"password": "***", "port": 80})]


def test_cli_setup_does_not_import_structlog_until_needed():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lxcri_core.log import get_logger, setup_logging\n"
        "setup_logging('warning', json=True)\n"
        "get_logger('x').info('below the level')\n"
        "print('structlog' in sys.modules)\n"
        "get_logger('x').warning('shown')\n"
        "print('structlog' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert '"event": "shown"' in out.stderr


def test_warnings_for_people_are_one_plain_line(capsys):
    setup_logging("info", json=True, people=True)
    log = get_logger("t")
    log.warning("disk\nnearly full", path="/var/lib/lxcri", password="hunter2")
    log.error("gone", name="web1")
    log.info("kept structured", n=1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "lxcri: warning: disk nearly full (path=/var/lib/lxcri, password=***)"
    assert lines[1] == "lxcri: error: gone (name=web1)"
    assert json.loads(lines[2])["event"] == "kept structured"
    setup_logging("warning", json=True)  # a daemon's: JSON throughout
    get_logger("t").warning("machine", k=1)
    assert json.loads(capsys.readouterr().err)["event"] == "machine"
