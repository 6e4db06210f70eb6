"""The exporter's and the logs' settings: checked where they are read, one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lxcri_core.config import Config, load_config, parse_config
from lxcri_core.errors import ConfigError
from lxcri_core.log import _JournalLogger


def test_defaults_listen_on_loopback_and_log_text() -> None:
    cfg = Config()
    assert cfg.exporter_listen == "127.0.0.1:9464" and cfg.log_format == "text"
    assert cfg.exporter_tls_cert is None and cfg.exporter_storage_ttl == 60.0


def test_file_and_env(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "exporter_listen: '[::1]:9500'\nexporter_storage_ttl: 5\nlog_format: json\n"
        "exporter_tls_cert: /etc/lxcri/e.pem\nexporter_tls_key: /etc/lxcri/e.key\n"
    )
    cfg = load_config(f, env={})
    assert (cfg.exporter_listen, cfg.exporter_storage_ttl, cfg.log_format) == (
        "[::1]:9500", 5.0, "json",
    )  # fmt: skip
    assert cfg.exporter_tls_key == Path("/etc/lxcri/e.key")
    env = {"LXCRI_EXPORTER_LISTEN": "127.0.0.1:1", "LXCRI_LOG_FORMAT": "text"}
    cfg = load_config(f, env=env)
    assert (cfg.exporter_listen, cfg.log_format) == ("127.0.0.1:1", "text")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"exporter_storage_ttl": -1}, "exporter_storage_ttl must be a number of seconds"),
        ({"exporter_storage_ttl": True}, "exporter_storage_ttl must be a number of seconds"),
        ({"exporter_listen": 9464}, "exporter_listen must be a string"),
        ({"log_format": ["json"]}, "log_format must be a string"),
    ],
)
def test_bad_values_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_half_a_tls_pair_and_an_unknown_format_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("exporter_tls_cert: /etc/lxcri/e.pem\n")
    with pytest.raises(ConfigError, match="exporter_tls_cert and exporter_tls_key go together"):
        load_config(f, env={})
    f.write_text("log_format: logfmt\n")
    with pytest.raises(ConfigError, match="log format 'logfmt' is not text or json"):
        load_config(f, env={})


def test_journal_records_carry_fields() -> None:
    """What python3-systemd's journal.send is given (the host has no journald to ask)."""
    sent: list[tuple[str, dict[str, str]]] = []
    journal = _JournalLogger(lambda message, **fields: sent.append((message, fields)))
    journal.warning(
        event="port clash",
        level="warning",
        timestamp="t",
        logger="lxcri_core.network",
        container="web",
        vmid=101,
        port=8080,
    )
    [(message, fields)] = sent
    assert message == "port clash container=web vmid=101 port=8080"
    assert fields["PRIORITY"] == "4" and fields["SYSLOG_IDENTIFIER"] == "lxcri"
    assert fields["CONTAINER_NAME"] == "web" and fields["LXCRI_VMID"] == "101"
    assert fields["LXCRI_LOGGER"] == "lxcri_core.network" and "LXCRI_TIMESTAMP" not in fields
