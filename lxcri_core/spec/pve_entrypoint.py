"""The ``entrypoint:`` value of a Proxmox OCI container: an argv as one string.

Proxmox VE 9.1 writes it with ``PVE::Tools::cmd2string`` (String::ShellQuote's
``shell_quote`` applied to each argument, joined by spaces) in
``PVE::LXC::Create::restore_oci_archive``, and passes it untouched to LXC as
``lxc.init.cmd = ...`` (``PVE::LXC::update_lxc_config``). No shell ever reads
it: LXC's config reader strips one pair of quotes around the whole value
(``parse_line`` in confile.c), then ``lxc_string_split_quoted`` splits it,
knowing whole-word single or double quotes and nothing else (no backslash
escapes, no ``'\\''``). So an argument is written in PVE's shell-quoted form
when LXC reads that form back as the same argument (every argument without a
``'``), else in a form LXC reads right (``"it's"``), else refused: writing
PVE's form would hand the program other arguments than the image asked for.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from lxcri_core.errors import SpecError

#: What PVE refuses in an entrypoint or an environment value (restore_oci_archive's
#: ``$has_ctrl_char``, the API's ``entrypoint``/``env`` patterns): C0 controls but tab, DEL.
PVE_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: String::ShellQuote leaves an argument bare when it has only word characters and these,
#: and no ``=``.
_SHELL_SAFE_PUNCT = frozenset("!%+,-./:=@^")
#: C's isspace(), which LXC's splitter uses.
_C_SPACE = " \t\n\v\f\r"


def _perl_word(ch: str) -> bool:
    """Perl's Unicode ``\\w`` (the image config reaches PVE as decoded strings): letters,
    marks, decimal digits, letter numbers, connector punctuation, join controls."""
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or ch in "\u200c\u200d"


def shell_quote(arg: str) -> str:
    """String::ShellQuote's ``shell_quote`` of one argument, as PVE's cmd2string uses it.

    An argument holding ``=`` is quoted too: ShellQuote quotes it when it is the
    first word (an environment assignment) and cmd2string quotes one word at a time.
    """
    if arg == "":
        return "''"
    if "=" not in arg and all(_perl_word(c) or c in _SHELL_SAFE_PUNCT for c in arg):
        return arg
    text = arg.replace("'", "'\\''")
    # ShellQuote's tidying: two or more quotes in a row as '"''"' instead of '\'''\''
    text = re.sub(r"(?:'\\''){2,}", lambda m: "'\"" + "'" * (len(m.group(0)) // 4) + "\"'", text)
    text = f"'{text}'"
    if text.startswith("''"):
        text = text[2:]
    if text.endswith("''"):
        text = text[:-2]
    return text


def cmd2string(argv: Sequence[str]) -> str:
    """``PVE::Tools::cmd2string``: every argument shell-quoted, joined by spaces."""
    return " ".join(shell_quote(a) for a in argv)


def lxc_split(text: str) -> list[str]:
    """LXC's ``lxc_string_split_quoted``: how LXC turns ``lxc.init.cmd`` into argv.

    Words are split on whitespace; a word that starts with ``'`` or ``"`` runs to
    the next same quote and ends there; quotes elsewhere are plain characters.
    An unclosed quoted word is dropped, as LXC drops it.
    """
    out: list[str] = []
    state, start = " ", 0
    for i, ch in enumerate(text):
        if state == " ":
            if ch in _C_SPACE:
                continue
            start = i
            state = ch if ch in "'\"" else "a"
        elif state == "a":
            if ch in _C_SPACE:
                out.append(text[start:i])
                state = " "
        elif ch == state:
            out.append(text[start + 1 : i])
            state = " "
    if state == "a":
        out.append(text[start:])
    return out


def lxc_init_cmd_argv(value: str) -> list[str]:
    """The argv LXC runs for ``lxc.init.cmd = value``: edge blanks trimmed, one pair of
    quotes around the whole value stripped (confile.c's ``parse_line``), then split."""
    value = value.strip(" \t")
    if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    return lxc_split(value)


def _forms(arg: str) -> list[str]:
    """The ways to write ``arg`` that ``lxc_split`` reads back alone, PVE's own first."""
    out: list[str] = []
    for form in (shell_quote(arg), f"'{arg}'", f'"{arg}"', arg):
        if form not in out and lxc_split(form) == [arg]:
            out.append(form)
    return out


def pve_entrypoint(argv: Sequence[str]) -> str:
    """The ``entrypoint:`` value for ``argv``, as PVE writes it where LXC reads it right.

    Raises SpecError naming the argument for a control character PVE refuses, or
    for an argument no form of which LXC splits back (it holds both quote kinds
    and whitespace, or starts with a quote and holds the other one).
    """
    if not argv:
        raise SpecError("an entrypoint needs at least one argument")
    choices: list[list[str]] = []
    for arg in argv:
        if PVE_CONTROL_CHARS.search(arg):
            raise SpecError(
                f"argument {arg!r} of the command contains a control character that "
                "Proxmox refuses in an entrypoint"
            )
        forms = _forms(arg)
        if not forms:
            raise SpecError(
                f"argument {arg!r} of the command cannot be written to pct.conf's entrypoint: "
                "LXC reads quotes only around whole words; use the init shim (pass state_dir)"
            )
        choices.append(forms)
    # words stand alone, so only the outer-quote stripping can go wrong: when the first
    # word opens with the quote the last one closes with, try their other forms
    middle = [c[0] for c in choices[1:-1]]
    for first in choices[0]:
        for last in choices[-1] if len(argv) > 1 else [first]:
            words = [first, *middle, last] if len(argv) > 1 else [first]
            text = " ".join(words)
            if lxc_init_cmd_argv(text) == list(argv):
                return text
    raise SpecError(
        f"command {list(argv)!r} cannot be written to pct.conf's entrypoint: LXC strips "
        "quotes around the whole value; use the init shim (pass state_dir)"
    )
