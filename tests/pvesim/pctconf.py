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
    #: The [pve:pending] section: changes waiting for the next start, and keys to delete then.
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: list[str] = field(default_factory=list)
    #: Snapshot sections, unchanged.
    snapshots: str = ""

    def env_runtime(self) -> list[str]:
        return [v for k, v in self.lxc if k == "lxc.environment.runtime"]

    def apply_pending(self) -> None:
        """vmconfig_apply_pending: what waited for a restart becomes the config."""
        for key in self.pending_delete:
            self.main.pop(key, None)
        self.main.update(self.pending)
        self.pending, self.pending_delete = {}, []


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
    section = "main"
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        m = _SECTION.match(line)
        if m and m.group(1).lower() == "pve:pending":
            section = "pending"
            continue
        if m:
            conf.snapshots = "\n".join(lines[i:])
            break
        if section == "pending":
            if line.startswith("delete:"):
                conf.pending_delete = [k for k in re.split(r"[,;\s]+", line[7:].strip()) if k]
                continue
            m = _KEY.match(line)
            if not m:
                raise ConfError(f"unable to parse config line: {line}")
            conf.pending[m.group(1)] = m.group(2)
            continue
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


def _check(key: str, value: str) -> None:
    if "\n" in value:
        raise ConfError(f"detected invalid newline inside property '{key}'")


def render(conf: PctConf) -> str:
    out = []
    for line in conf.description.rstrip("\n").split("\n") if conf.description else []:
        out.append("#" + encode_text(line))
    for key in sorted(conf.main):
        _check(key, conf.main[key])
        out.append(f"{key}: {conf.main[key]}")
    for k, v in conf.lxc:
        _check(k, v)
        out.append(f"{k}: {v}")
    if conf.pending or conf.pending_delete:
        out += ["", "[pve:pending]"]
        for key in sorted(conf.pending):
            _check(key, conf.pending[key])
            out.append(f"{key}: {conf.pending[key]}")
        if conf.pending_delete:
            out.append("delete: " + ",".join(conf.pending_delete))
    text = "\n".join(out) + "\n"
    if conf.snapshots:
        text += "\n" + conf.snapshots.strip("\n") + "\n"
    return text


def digest(text: str) -> str:
    """The config digest PVE returns and checks (SHA1 of the raw file)."""
    return hashlib.sha1(text.encode()).hexdigest()
