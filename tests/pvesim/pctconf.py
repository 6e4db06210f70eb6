"""pct.conf files (/etc/pve/lxc/VMID.conf) read and written as pve-container's Config.pm does.

Layout: ``#`` lines at the top are the description (PVE's encode_text:
control, high-bit characters and ':' percent-encoded), then ``key: value``
lines (the last of a repeated key wins), ``lxc.*`` lines kept in order, then
sections: ``[pve:pending]`` and ``[snapname]`` snapshots, kept verbatim here.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field

from tests.pvesim.errors import PveError


class ConfError(PveError):
    """A config PVE's parser or writer refuses (a plain die: HTTP 500)."""


@dataclass
class PctConf:
    main: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    #: Everything from the first section header on, unchanged.
    sections: str = ""

    def env_runtime(self) -> list[str]:
        return [v for k, v in self.lxc if k == "lxc.environment.runtime"]


def encode_text(text: str) -> str:
    # PVE::Tools::encode_text: uri_escape with unsafe "^\x20-\x39\x3b-\x7e".
    out = []
    for ch in text:
        o = ord(ch)
        if 0x20 <= o <= 0x39 or 0x3B <= o <= 0x7E:
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
    return "".join(out)


def decode_text(text: str) -> str:
    return urllib.parse.unquote(text)


_KEY = re.compile(r"^([a-z][a-z_]*\d*):\s*(.*\S)\s*$")
_LXC = re.compile(r"^(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$")
_SECTION = re.compile(r"^\[([a-z][a-z0-9_\-]+|pve:pending)\]\s*$", re.I)


def parse(text: str) -> PctConf:
    conf = PctConf()
    lines = text.split("\n")
    descr: list[str] = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if _SECTION.match(line):
            conf.sections = "\n".join(lines[i:])
            break
        if line.startswith("#"):
            descr.append(decode_text(line[1:]))
            continue
        m = _LXC.match(line)
        if m:
            conf.lxc.append((m.group(1), m.group(2)))
            continue
        m = _KEY.match(line)
        if m:
            conf.main[m.group(1)] = m.group(2)
            continue
        raise ConfError(f"unable to parse config line: {line}")
    if descr:
        conf.description = "\n".join(descr) + "\n"
    return conf


def render(conf: PctConf) -> str:
    out = []
    for line in conf.description.rstrip("\n").split("\n") if conf.description else []:
        out.append("#" + encode_text(line))
    for key in sorted(conf.main):
        value = conf.main[key]
        if "\n" in value:
            raise ConfError(f"detected invalid newline inside property '{key}'")
        out.append(f"{key}: {value}")
    for k, v in conf.lxc:
        if "\n" in v:
            raise ConfError(f"detected invalid newline inside property '{k}'")
        out.append(f"{k}: {v}")
    text = "\n".join(out) + "\n"
    if conf.sections:
        text += "\n" + conf.sections.strip("\n") + "\n"
    return text


def digest(text: str) -> str:
    """The config digest PVE returns and checks (SHA1 of the raw file)."""
    return hashlib.sha1(text.encode()).hexdigest()
