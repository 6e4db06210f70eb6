"""pct.conf's ``entrypoint``: PVE 9.1's quoting, and what LXC makes of it.

PVE writes the image's ENTRYPOINT + CMD with ``PVE::Tools::cmd2string``
(String::ShellQuote per argument) in ``PVE::LXC::Create::restore_oci_archive``,
and ``PVE::LXC::update_lxc_config`` hands it to LXC as ``lxc.init.cmd = ...``,
which LXC's confile.c ``parse_line`` unquotes once and ``lxc_string_split_quoted``
splits. The expected strings below were recorded from String::ShellQuote 1.04
(Debian's libstring-shellquote-perl, as PVE uses).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.errors import SpecError
from lxcri_core.spec.pve_entrypoint import (
    cmd2string,
    lxc_init_cmd_argv,
    lxc_split,
    pve_entrypoint,
    shell_quote,
)

#: shell_quote($_) outputs recorded from String::ShellQuote 1.04.
RECORDED = {
    "": "''",
    "a''b": "'a'\"''\"'b'",
    "'x'": "\\''x'\\'",
    "--port=80": "'--port=80'",
    "daemon off;": "'daemon off;'",
    "a'b": "'a'\\''b'",
    "x'''y": "'x'\"'''\"'y'",
    "Grüße": "Grüße",
    "/usr/bin/app": "/usr/bin/app",
    'a"b': "'a\"b'",
    "%+,-./:@^!": "%+,-./:@^!",
    "~x": "'~x'",
    "a b=c": "'a b=c'",
}


@pytest.mark.parametrize(("arg", "quoted"), RECORDED.items())
def test_shell_quote_is_string_shellquote(arg: str, quoted: str) -> None:
    """PVE::Tools::cmd2string -> String::ShellQuote::shell_quote, one argument at a time."""
    assert shell_quote(arg) == quoted


def test_common_images_get_pve_s_own_string() -> None:
    """restore_oci_archive: ``$conf->{entrypoint} = PVE::Tools::cmd2string($init_cmd)``."""
    nginx = ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
    assert pve_entrypoint(nginx) == "/docker-entrypoint.sh nginx -g 'daemon off;'"
    assert pve_entrypoint(nginx) == cmd2string(nginx)
    assert pve_entrypoint(["/app", "--port=80"]) == "/app '--port=80'"
    assert pve_entrypoint(["/app", "a b", ""]) == "/app 'a b' ''"
    assert lxc_init_cmd_argv("/app 'a b' ''") == ["/app", "a b", ""]


def test_lxc_splitter_rules() -> None:
    """lxc_string_split_quoted: quotes only around whole words, no escapes; parse_line strips
    one pair of quotes around the whole value."""
    assert lxc_split("'a'b") == ["a", "b"]
    assert lxc_split("a'b c") == ["a'b", "c"]
    assert lxc_split("'it'\\''s'") == ["it", "\\''s'"]
    assert lxc_split("x 'open") == ["x"]
    assert lxc_init_cmd_argv("'a b'") == ["a", "b"]
    assert lxc_init_cmd_argv("'a' 'b'") == ["a'"]  # and an unclosed 'b, dropped


def test_quote_in_an_argument_is_written_so_lxc_reads_it() -> None:
    """PVE's own form of an argument with a ' is split wrong by LXC; lxcri writes it in
    double quotes (this argv was refused before)."""
    argv = ["sh", "-c", "echo 'hi'"]
    assert lxc_init_cmd_argv(cmd2string(argv)) != argv  # what PVE itself would start
    text = pve_entrypoint(argv)
    assert text == "sh -c \"echo 'hi'\""
    assert lxc_init_cmd_argv(text) == argv
    # the outer-quote stripping: first word opens with ', last closes with ' -> other forms
    argv = ["'q'", "x y"]
    assert lxc_init_cmd_argv(pve_entrypoint(argv)) == argv


def test_refused_with_the_argument_named() -> None:
    for bad in ("a\nb", "\x1b[1m", "x\x7f", "\x00"):
        with pytest.raises(SpecError, match="control character"):
            pve_entrypoint(["/app", bad])
    assert pve_entrypoint(["/app", "a\tb"]) == "/app 'a\tb'"  # tab: PVE accepts it
    with pytest.raises(SpecError, match=r"'a\\'b \"c'"):
        pve_entrypoint(["/app", "a'b \"c"])  # both quotes and a blank: no form LXC reads
    with pytest.raises(SpecError, match="strips quotes"):
        pve_entrypoint(["my prog"])  # a lone quoted word loses its quotes in LXC
    with pytest.raises(SpecError):
        pve_entrypoint([])


_arg = st.text(st.characters(codec="utf-8"), max_size=12)  # utf-8: no lone surrogates


@given(st.lists(_arg, min_size=1, max_size=5))
def test_written_entrypoint_starts_exactly_that_argv(argv: list[str]) -> None:
    """Whatever is written, LXC runs exactly ``argv``; else a clear refusal."""
    try:
        text = pve_entrypoint(argv)
    except SpecError:
        return
    assert "\n" not in text and "\r" not in text
    assert lxc_init_cmd_argv(text) == argv
