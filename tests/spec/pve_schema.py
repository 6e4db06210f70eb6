"""A small validator of Proxmox API parameters against tests/data/pve/lxc-config-schema.json.

Checks what the schema states: parameter names (``net[n]`` style families
included), types, integer ranges, enums, ``pattern`` (Perl regexes, anchored
as PVE anchors them), ``maxLength``, and property-string ``format`` objects
key by key; a few named string formats are checked as far as practical.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

from lxcri_core.spec.pve_config import parse_property_string

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "pve" / "lxc-config-schema.json"
_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"


def load_schema(kind: str = "create") -> dict[str, Any]:
    props: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())[kind]["properties"]
    return props


def _perl_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("(?^:", "(?:"))


def _named_format(name: str, value: str) -> str | None:
    """An error for ``value`` under PVE string format ``name``, or None (unknown: accepted)."""

    def ip(version: int) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    if name == "dns-name":
        ok = all(re.fullmatch(_DNS_LABEL, p) for p in value.split("."))
    elif name == "ipv4":
        ok = ip(4)
    elif name == "ipv6":
        ok = ip(6)
    elif name == "mac-addr":
        ok = bool(re.fullmatch(r"(?:[a-f0-9]{2}:){5}[a-f0-9]{2}", value, re.I)) and not (
            int(value[:2], 16) & 1
        )
    elif name == "pve-ipv4-config":
        ok = value in ("dhcp", "manual") or ("/" in value and _is_iface(value, 4))
    elif name == "pve-ipv6-config":
        ok = value in ("auto", "dhcp", "manual") or ("/" in value and _is_iface(value, 6))
    elif name == "pve-lxc-mp-string":
        ok = not re.search(r"/\.\.?/|/\.\.?$|^\.\./", value)
    elif name == "disk-size":
        ok = bool(re.fullmatch(r"\d+(\.\d+)?[KMGT]?", value))
    elif name in ("pve-volume-id", "pve-storage-id"):
        ok = bool(re.fullmatch(r"[a-z][a-z0-9\-_.]*[a-z0-9](:.+)?", value, re.I))
    elif name == "lxc-ip-with-ll-iface-list":
        ok = all(_is_ip(v) for v in re.split(r"[ ,;]+", value))
    elif name == "pve-tag-list":
        ok = all(
            re.fullmatch(r"(?i:[a-z0-9_][a-z0-9_\-+.]*)", t) for t in re.split(r"[;, ]+", value)
        )
    elif name == "dns-name-list":
        ok = all(
            all(re.fullmatch(_DNS_LABEL, p) for p in d.split("."))
            for d in re.split(r"[ ,;]+", value)
        )
    else:
        return None
    return None if ok else f"{value!r} is not a valid {name}"


def _is_iface(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_interface(value).version == version
    except ValueError:
        return False


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("%", 1)[0])
        return True
    except ValueError:
        return False


def check_value(name: str, prop: dict[str, Any], value: str) -> list[str]:
    """Errors of one (sub)parameter value as the string PVE would receive."""
    errs: list[str] = []
    typ = prop.get("type", "string")
    if typ == "boolean":
        if value not in ("0", "1"):
            errs.append(f"{name}: {value!r} is not a boolean (0/1)")
        return errs
    if typ in ("integer", "number"):
        try:
            num = int(value) if typ == "integer" else float(value)
        except ValueError:
            return [f"{name}: {value!r} is not an {typ}"]
        if "minimum" in prop and num < float(prop["minimum"]):
            errs.append(f"{name}: {num} < minimum {prop['minimum']}")
        if "maximum" in prop and num > float(prop["maximum"]):
            errs.append(f"{name}: {num} > maximum {prop['maximum']}")
        return errs
    if "enum" in prop and value not in prop["enum"]:
        errs.append(f"{name}: {value!r} not in {prop['enum']}")
    if "pattern" in prop and not _perl_re(prop["pattern"]).fullmatch(value):
        errs.append(f"{name}: {value!r} does not match {prop['pattern']}")
    if "maxLength" in prop and len(value) > int(prop["maxLength"]):
        errs.append(f"{name}: longer than {prop['maxLength']}")
    fmt = prop.get("format")
    if isinstance(fmt, dict):
        default_key = next((k for k, v in fmt.items() if v.get("default_key")), None)
        try:
            parts = parse_property_string(value, default_key)
        except ValueError as e:
            return [f"{name}: {e}"]
        for key, sub in fmt.items():
            if not sub.get("optional") and key not in parts and not sub.get("alias"):
                errs.append(f"{name}: required key {key!r} missing")
        for key, sub_value in parts.items():
            if key not in fmt:
                errs.append(f"{name}: unknown key {key!r}")
            else:
                errs += check_value(f"{name}.{key}", fmt[key], sub_value)
    elif isinstance(fmt, str):
        err = _named_format(fmt, value)
        if err:
            errs.append(f"{name}: {err}")
    return errs


#: What current PVE refuses in ``entrypoint`` and each ``env`` value; 9.1's schema patterns
#: say ``\\x10-\\x1F`` (a typo, fixed later to ``\\x0a``, as restore_oci_archive checks).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _checks_beyond_schema(key: str, value: str) -> list[str]:
    """The checks pve-container makes in code rather than in the schema."""
    errs: list[str] = []
    if key == "entrypoint" and _CONTROL.search(value):
        errs.append(f"{key}: contains a control character")
    if key == "env":
        for item in value.split("\0"):
            if _CONTROL.search(item):
                errs.append(f"env: {item.partition('=')[0]!r} contains a control character")
    if re.fullmatch(r"net\d+", key):
        try:
            net = parse_property_string(value)
        except ValueError:
            return errs
        # PVE::LXC::Config::update_pct_config, PVE::LXC::update_lxc_config
        host_managed = net.get("link_down") != "1" and net.get("host-managed") == "1"
        if host_managed and net.get("ip6") == "auto":
            errs.append(f"{key}: SLAAC is not supported for host-managed network configuration")
    return errs


def validate_params(params: dict[str, str], kind: str = "create") -> list[str]:
    """Every error of ``params`` against the create (or update) parameter schema, and
    the checks pve-container makes in code."""
    props = load_schema(kind)
    errs: list[str] = []
    for key, value in params.items():
        prop = props.get(key)
        if prop is None:
            m = re.fullmatch(r"([a-z]+)(\d+)", key)
            prop = props.get(f"{m.group(1)}[n]") if m else None
        if prop is None:
            errs.append(f"{key}: not a parameter of the {kind} call")
            continue
        errs += check_value(key, prop, str(value))
        errs += _checks_beyond_schema(key, str(value))
    return errs
