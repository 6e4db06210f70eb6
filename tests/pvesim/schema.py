"""Request validation against the PVE 9 API schema, as pve-common's JSONSchema.pm does it.

The schema subset lives in tests/data/pve/api-schema.json (see
gen_api_schema.py). Messages are PVE's own wording, so a backend sees what a
real node answers: ``property is not defined in schema and the schema does not
allow additional properties``, ``type check ('integer') failed - got 'x'``,
``value does not match the regex pattern``, ``invalid format - ...``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "data" / "pve" / "api-schema.json"

# Index ranges of the "name[n]" properties (pve-container's MAX_* constants).
INDEXED_MAX = {"net": 32, "mp": 256, "dev": 256, "unused": 256}

ADDITIONAL = "property is not defined in schema and the schema does not allow additional properties"
MISSING = "property is missing and it is not optional"


@cache
def api() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def _route_re(template: str) -> re.Pattern[str]:
    # {upid} and {volume} may hold ':' but never '/', like PVE's URI matching.
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    # Longer templates first so /lxc/{vmid}/config wins over /lxc/{vmid}.
    return [(_route_re(t), t) for t in sorted(api(), key=len, reverse=True)]


def match(path: str) -> tuple[str, dict[str, str]] | None:
    """The schema path template matching ``path`` and the values of its {vars}."""
    for rx, template in _routes():
        m = rx.match(path)
        if m:
            return template, m.groupdict()
    return None


def method_info(template: str, method: str) -> dict[str, Any] | None:
    info: dict[str, Any] | None = api().get(template, {}).get(method)
    return info


def perl_re(pattern: str) -> str:
    """A Perl pattern from the schema as a Python one (``(?^:...)`` is Perl's inline group)."""
    return pattern.replace("(?^:", "(?:")


def _prop_for(props: dict[str, Any], key: str) -> dict[str, Any] | None:
    if key in props:
        p: dict[str, Any] = props[key]
        return p
    m = re.fullmatch(r"([a-z]+)(\d+)", key)
    if m and f"{m.group(1)}[n]" in props:
        limit = INDEXED_MAX.get(m.group(1), 256)
        if int(m.group(2)) < limit and str(int(m.group(2))) == m.group(2):
            q: dict[str, Any] = props[f"{m.group(1)}[n]"]
            return q
    return None


# -- formats (pve-common JSONSchema.pm / PVE::Storage / pve-container verifiers) --

_NODE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?")
_STORAGE_ID = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]")
_CONFIGID = re.compile(r"[a-z][a-z0-9_-]+")
_DNS_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_DNS = re.compile(rf"(?:{_DNS_LABEL}\.)*{_DNS_LABEL}")
_MAC = re.compile(r"[a-fA-F0-9][02468aceACE](?::[a-fA-F0-9]{2}){5}")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*")
_DISK_SIZE = re.compile(r"\d+(?:\.\d+)?[KMGT]?")


def _check_named_format(fmt: str, value: str) -> str | None:
    """An error message, or None when ``value`` has the named format."""
    if fmt == "pve-vmid":
        if not re.fullmatch(r"[1-9]\d{2,8}", value):
            return "value does not look like a valid VM ID"
    elif fmt == "pve-node":
        if not _NODE.fullmatch(value):
            return "value does not look like a valid node name"
    elif fmt == "pve-storage-id":
        if not _STORAGE_ID.fullmatch(value):
            return f"storage ID '{value}' contains illegal characters"
    elif fmt == "pve-volume-id":
        if not re.fullmatch(r"(?:[a-z][a-z0-9\-_.]*[a-z0-9]):.+", value, re.S):
            return f"unable to parse volume ID '{value}'"
    elif fmt == "pve-configid":
        if not _CONFIGID.fullmatch(value):
            return f"invalid configuration ID '{value}'"
    elif fmt == "pve-configid-list":
        for part in re.split(r"[,;\s]+", value.strip()):
            if part and not _CONFIGID.fullmatch(part):
                return f"invalid configuration ID '{part}'"
    elif fmt == "dns-name":
        if not _DNS.fullmatch(value):
            return "value does not look like a valid DNS name"
    elif fmt == "dns-name-list":
        for part in re.split(r"[,;\s]+", value.strip()):
            if part and not _DNS.fullmatch(part):
                return "value does not look like a valid DNS name"
    elif fmt == "mac-addr":
        if not _MAC.fullmatch(value):
            return "value does not look like a valid unicast MAC address"
    elif fmt in ("ipv4", "ipv6"):
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return f"value does not look like a valid {fmt.upper()} address"
        if addr.version != int(fmt[-1]):
            return f"value does not look like a valid {fmt.upper()} address"
    elif fmt in ("pve-ipv4-config", "pve-ipv6-config"):
        version = 4 if fmt == "pve-ipv4-config" else 6
        keywords = ("dhcp", "manual") if version == 4 else ("auto", "dhcp", "manual")
        if value not in keywords:
            try:
                iface = ipaddress.ip_interface(value)
            except ValueError:
                iface = None
            if iface is None or iface.version != version or "/" not in value:
                return f"invalid IPv{version} configuration"
    elif fmt == "pve-tag-list":
        for tag in re.split(r"[;,\s]+", value.strip()):
            if tag and not _TAG.fullmatch(tag):
                return f"invalid tag '{tag}'"
    elif fmt == "disk-size":
        if not _DISK_SIZE.fullmatch(value):
            return f"unable to parse size '{value}'"
    elif fmt == "pve-lxc-mp-string" and (
        # pve-container's verify_lxc_mp_string: no '..' components, no control characters.
        re.search(r"(?:^|/)\.\.(?:/|$)", value) or re.search(r"[\x00-\x1f]", value)
    ):
        return "invalid character in mount point path"
    return None


def parse_boolean(value: str) -> int | None:
    """pve-common's parse_boolean (property strings and the CLI accept these)."""
    v = value.lower()
    if v in ("1", "on", "yes", "true"):
        return 1
    if v in ("0", "off", "no", "false"):
        return 0
    return None


def parse_property_string(
    fmt: dict[str, Any], value: str, path: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split ``k=v,k=v`` the way PVE does; errors keyed ``path.key``."""
    res: dict[str, Any] = {}
    errors: dict[str, str] = {}
    default_key = next((k for k, p in fmt.items() if p.get("default_key")), None)
    for part in value.split(","):
        if part == "":
            continue
        if "=" in part:
            k, v = part.split("=", 1)
        else:
            if default_key is None:
                errors[path] = "value without key, but schema does not define a default key"
                continue
            k, v = default_key, part
        alias = fmt.get(k, {}).get("alias")
        if alias:
            k = alias
        if k in res:
            errors[path] = f"duplicate key in comma-separated list property: {k}"
            continue
        sub = fmt.get(k)
        if sub is None:
            errors[f"{path}.{k}"] = ADDITIONAL
            continue
        if sub.get("type") == "boolean":
            b = parse_boolean(v)
            if b is None:
                errors[f"{path}.{k}"] = f"type check ('boolean') failed - got '{v}'"
                continue
            res[k] = b
        else:
            res[k] = v
    for k, sub in fmt.items():
        missing = k not in res and not sub.get("optional") and not sub.get("alias")
        if missing and f"{path}.{k}" not in errors:
            errors[f"{path}.{k}"] = MISSING
    for k, v in list(res.items()):
        if fmt[k].get("type") == "boolean":
            continue
        msg = check_value(fmt[k], v)
        if msg:
            errors[f"{path}.{k}"] = msg
    return res, errors


def print_property_string(fmt: dict[str, Any], data: dict[str, Any]) -> str:
    """pve-common's print_property_string: default key bare, required keys, then sorted."""
    default_key = next((k for k, p in fmt.items() if p.get("default_key")), None)
    parts: list[str] = []
    done: set[str] = set()

    def add(key: str, bare: bool = False) -> None:
        if key in done or key not in data:
            return
        done.add(key)
        parts.append(str(data[key]) if bare else f"{key}={data[key]}")

    if default_key:
        add(default_key, bare=True)
    for k in sorted(data):
        if k in fmt and not fmt[k].get("optional"):
            add(k)
    for k in sorted(data):
        add(k)
    return ",".join(parts)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value) is not None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and (
        re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", value) is not None
    )


def check_value(schema: dict[str, Any], value: Any, path: str = "") -> str | None:
    """check_prop for one scalar: type, format, pattern, lengths, range, enum."""
    typ = schema.get("type", "string")
    if typ == "boolean":
        if value is True or value is False or str(value) in ("0", "1"):
            return None
        return f"type check ('boolean') failed - got '{value}'"
    if typ == "integer" and not _is_integer(value):
        return f"type check ('integer') failed - got '{value}'"
    if typ == "number" and not _is_number(value):
        return f"type check ('number') failed - got '{value}'"
    sval = str(value)
    fmt = schema.get("format")
    if isinstance(fmt, dict):
        _, errs = parse_property_string(fmt, sval, path)
        if errs:
            lines = "".join(f"{k.lstrip('.')}: {v.rstrip()}\n" for k, v in sorted(errs.items()))
            return f"invalid format - format error\n{lines}"
    elif isinstance(fmt, str):
        msg = _check_named_format(fmt, sval)
        if msg:
            return f"invalid format - {msg}\n"
    pattern = schema.get("pattern")
    if pattern is not None:
        pat = perl_re(pattern)
        if pat.startswith("^") and pat.endswith("$"):
            pat = pat[1:-1]
        if not re.fullmatch(pat, sval, re.S):
            return "value does not match the regex pattern"
    if "maxLength" in schema and len(sval) > int(schema["maxLength"]):
        return f"value may only be {schema['maxLength']} characters long"
    if "minLength" in schema and len(sval) < int(schema["minLength"]):
        return f"value must be at least {schema['minLength']} characters long"
    if _is_number(value):
        num = float(sval)
        if "maximum" in schema and num > float(schema["maximum"]):
            return f"value must have a maximum value of {schema['maximum']}"
        if "minimum" in schema and num < float(schema["minimum"]):
            return f"value must have a minimum value of {schema['minimum']}"
    if "enum" in schema and sval not in [str(e) for e in schema["enum"]]:
        return (
            f"value '{sval}' does not have a value in the enumeration '{', '.join(schema['enum'])}'"
        )
    return None


def coerce(schema: dict[str, Any], value: Any) -> Any:
    typ = schema.get("type", "string")
    if typ == "boolean":
        return 1 if value is True or str(value) == "1" else 0
    if typ == "integer":
        return int(value)
    if typ == "number":
        f = float(value)
        return int(f) if f.is_integer() else f
    return value if isinstance(value, str) else str(value)


#: What current PVE refuses in ``env`` (the published 9.1 pattern lets
#: \x0a-\x0f through; a newline would start a new line in the config file).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _lxc_code_checks(props: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """The checks pve-container makes in code, not in the schema (create and config)."""
    errors: dict[str, str] = {}
    env = params.get("env")
    if isinstance(env, str) and any(CONTROL.search(e) for e in env.split("\0")):
        errors["env"] = "value does not match the regex pattern"
    for key, value in params.items():
        prop = _prop_for(props, key) if re.fullmatch(r"net\d+", key) else None
        if prop is None or not isinstance(value, str):
            continue
        net, _ = parse_property_string(prop["format"], value, key)
        # PVE::LXC::Config::update_pct_config and PVE::LXC::update_lxc_config
        if net.get("host-managed") == 1 and net.get("link_down") != 1 and net.get("ip6") == "auto":
            errors[key] = "SLAAC is not supported for host-managed network configuration"
    return errors


def validate(
    params_schema: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``params`` against a method's parameter schema; (typed params, errors)."""
    props: dict[str, Any] = params_schema.get("properties", {})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in params.items():
        prop = _prop_for(props, key)
        if prop is None:
            if params_schema.get("additionalProperties", 1) != 0:
                out[key] = value
            else:
                errors[key] = ADDITIONAL
            continue
        msg = check_value(prop, value, key)
        if msg:
            errors[key] = msg
            continue
        req = prop.get("requires")
        if isinstance(req, str) and req not in params:
            errors[req] = f"missing property - '{key}' requires this property"
        out[key] = coerce(prop, value)
    for key, prop in props.items():
        if "[n]" in key or prop.get("optional") or key in params:
            continue
        errors[key] = MISSING
    if "env" in props and "net[n]" in props:  # a container's create or config
        for key, msg in _lxc_code_checks(props, params).items():
            errors.setdefault(key, msg)
    return out, errors


def property_string(template: str, method: str, key: str, value: str) -> dict[str, Any]:
    """Parse an already validated property-string parameter (net0, mp0, rootfs, features)."""
    info = method_info(template, method)
    assert info is not None
    prop = _prop_for(info["parameters"]["properties"], key)
    assert prop is not None and isinstance(prop.get("format"), dict)
    res, _ = parse_property_string(prop["format"], value, key)
    return res


def config_schema() -> dict[str, Any]:
    """The container option schema: create's parameters plus update's (delete, digest, ...)."""
    create = method_info("/nodes/{node}/lxc", "POST")
    update = method_info("/nodes/{node}/lxc/{vmid}/config", "PUT")
    assert create is not None and update is not None
    props = dict(create["parameters"]["properties"])
    props.update(update["parameters"]["properties"])
    return props
