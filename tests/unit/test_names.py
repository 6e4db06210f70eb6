"""Names, tags, digests, ids, hosts, volume names, label keys, bridge and interface
names: a trailing newline (which ``$`` lets through), carriage return or NUL is refused
by every validator, through its public function and, for container names, the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.containers.record import NAME_RE, check_name
from lxcri_core.digest import check_digest
from lxcri_core.errors import LxcriError
from lxcri_core.network import ports
from lxcri_core.network.bridge import check_ifname
from lxcri_core.reference import parse_reference
from lxcri_core.registry.login import registry_host
from lxcri_core.spec.options import (
    parse_bridge,
    parse_env,
    parse_hostname,
    parse_label,
    parse_mac,
    parse_volume,
)
from lxcri_core.storage import chain
from tests.conftest import run_lxcri

DIGEST = "sha256:" + "ab" * 32
BAD_ENDINGS = ["\n", "\r", "\0"]

#: (what, validator, a valid value): the validator raises an LxcriError when it refuses.
VALIDATORS: list[tuple[str, Callable[[str], Any], str]] = [
    ("container name", check_name, "web"),
    ("image repository", parse_reference, "library/busybox"),
    ("image tag", parse_reference, "busybox:1.0"),
    ("image digest", parse_reference, "busybox@" + DIGEST),
    ("registry host", lambda v: parse_reference(v + "/busybox:1.0"), "127.0.0.1:5000"),
    ("digest", check_digest, DIGEST),
    ("login registry", registry_host, "registry.example:5000"),
    ("volume name", lambda v: parse_volume(v + ":/data"), "data"),
    ("environment name", lambda v: parse_env(v + "=1", {}), "PATH"),
    ("label key", lambda v: parse_label(v + "=1"), "com.example.role"),
    ("--bridge", parse_bridge, "vmbr0"),
    ("--mac-address", parse_mac, "02:00:00:00:00:01"),
    ("--hostname", parse_hostname, "web.example.lan"),
    ("interface name", check_ifname, "lxcri0"),
    ("port chain id", ports.check_container_id, "a1b2c3"),
    ("storage container id", chain.check_container_id, "a1b2c3"),
]


@pytest.mark.parametrize(("what", "validate", "good"), VALIDATORS, ids=[v[0] for v in VALIDATORS])
@pytest.mark.parametrize("ending", BAD_ENDINGS, ids=["LF", "CR", "NUL"])
def test_trailing_control_character_is_refused(
    what: str, validate: Callable[[str], Any], good: str, ending: str
) -> None:
    validate(good)  # the value itself is fine
    with pytest.raises(LxcriError):
        validate(good + ending)


@given(
    name=st.from_regex(NAME_RE, fullmatch=True),
    ending=st.sampled_from([*BAD_ENDINGS, "\n\n", "\x0b", "\x7f", "\u2028"]),
)
def test_no_valid_container_name_plus_a_control_character_is_valid(name: str, ending: str) -> None:
    assert check_name(name) == name
    with pytest.raises(LxcriError, match="invalid container name"):
        check_name(name + ending)


@given(
    name=st.from_regex(r"[A-Za-z0-9_.-]{1,15}", fullmatch=True),
    ending=st.sampled_from(BAD_ENDINGS),
)
def test_no_valid_interface_name_plus_a_control_character_is_valid(name: str, ending: str) -> None:
    assert check_ifname(name) == name
    with pytest.raises(LxcriError):
        check_ifname(name + ending)


@pytest.mark.parametrize("name", ["web\n", "web\r", "web\n\n"], ids=["LF", "CR", "LFLF"])
def test_cli_refuses_a_container_name_with_a_newline(isolated_env: Path, name: str) -> None:
    proc = run_lxcri("create", "--name", name, "127.0.0.1:1/none:1", timeout=60)
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"lxcri: error: invalid container name {name!r}")
    assert not list((isolated_env / "containers").glob("*"))


@pytest.mark.parametrize("text", ["busybox:caf\u00e9", "busybox:\u0661\u0662", "busybox:t\u00ebst"])
def test_tag_is_ascii_as_in_the_distribution_spec(text: str) -> None:
    with pytest.raises(LxcriError, match="tag"):
        parse_reference(text)
