"""Read a stack file: a subset of the compose format, checked key by key.

Every error names the path of the bad value (``services.web.ports[1]: ...``);
a key lxcri does not know is an error naming it, never silently ignored (a
``networks:`` or ``secrets:`` left out would make the stack do less than its
author meant). Top-level ``x-*`` keys are accepted: compose defines them as
ignored by design (a place for YAML anchors), they configure nothing.

The YAML is loaded by ``yaml_load`` (bombs, duplicate keys, YAML 1.1 surprises),
the files it names are read by ``folder`` (inside the stack's folder only), and
``$VAR`` in values is replaced as docker compose does (``interpolate``), from
the environment and the folder's ``.env``.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

from lxcri_core import ids
from lxcri_core.errors import SpecError
from lxcri_core.spec import options as o
from lxcri_core.stacks.folder import EnvFiles, inside_path, read_env_file
from lxcri_core.stacks.interpolate import interpolate, parse_dotenv
from lxcri_core.stacks.model import Condition, Healthcheck, Service, Stack, VolumeUse
from lxcri_core.stacks.plan import start_order
from lxcri_core.stacks.yaml_load import MAX_FILE, load_yaml

#: the names lxcri's container names may hold (compose's project-name rule)
_STACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z", re.ASCII)
#: a volume key; with the stack name it becomes a volume name
_VOLUME_KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z", re.ASCII)

TOP_KEYS = ("version", "name", "services", "volumes")
SERVICE_KEYS = (
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "depends_on",
    "restart",
    "healthcheck",
    "hostname",
    "user",
    "working_dir",
    "labels",
    "mem_limit",
    "cpus",
)
HEALTH_KEYS = ("test", "interval", "timeout", "start_period", "retries", "disable")
CONDITIONS: tuple[Condition, ...] = ("service_started", "service_healthy")


def _err(path: str, why: str) -> SpecError:
    return SpecError(f"{path}: {why}" if path else why)


# -- value checks -------------------------------------------------------------------------


def _mapping(value: Any, path: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(path, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _err(path, f"key {key!r} must be a string")
        if allowed is not None and key not in allowed:
            where = f"{path}.{key}" if path else key
            raise _err(
                where,
                f"unknown key {key!r}; lxcri stacks know {', '.join(allowed)} here",
            )
    return cast(dict[str, Any], value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _string(value: Any, path: str, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        if "\x00" in value:
            raise _err(path, "must not contain a NUL byte")
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _err(path, f"expected a string, got {_kind(value)}")


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _err(path, f"expected a list, got {_kind(value)}")
    return value


def _argv(value: Any, path: str) -> tuple[str, ...]:
    """``command``/``entrypoint``: a list of strings, or a string split as a shell would."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as e:
            raise _err(path, f"cannot split {value!r}: {e}") from None
    return tuple(_string(v, f"{path}[{i}]") for i, v in enumerate(_list(value, path)))


def _checked(path: str, check: Callable[[], Any]) -> Any:
    """Run a docker-option parser; its SpecError gets the path in front."""
    try:
        return check()
    except SpecError as e:
        raise _err(path, str(e)) from None


def _key_values(value: Any, path: str, what: str) -> list[tuple[str, str | None]]:
    """``environment``/``labels``: a list of ``K=V`` (``K`` alone: no value) or a mapping."""
    out: list[tuple[str, str | None]] = []
    if isinstance(value, dict):
        for k, v in _mapping(value, path, None).items():
            p = f"{path}.{k}"
            if v is None:
                out.append((k, None))
            elif isinstance(v, bool):
                out.append((k, "true" if v else "false"))
            else:
                out.append((k, _string(v, p, numbers=True)))
        return out
    for i, item in enumerate(_list(value, path)):
        text = _string(item, f"{path}[{i}]")
        k, eq, v = text.partition("=")
        out.append((k, v if eq else None))
    if not out and what == "labels":
        return out
    return out


def _env(value: Any, path: str) -> tuple[str, ...]:
    out = []
    for i, (k, v) in enumerate(_key_values(value, path, "environment")):
        p = f"{path}.{k}" if isinstance(value, dict) else f"{path}[{i}]"
        item = k if v is None else f"{k}={v}"
        _checked(p, partial(o.parse_env, item, {}, flag="environment"))
        out.append(item)
    return tuple(out)


def _labels(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, (k, v) in enumerate(_key_values(value, path, "labels")):
        p = f"{path}.{k}" if isinstance(value, dict) else f"{path}[{i}]"
        _checked(p, partial(o.parse_label, f"{k}={v or ''}"))
        if k.startswith("io.lxcri.stack"):
            raise _err(p, f"label {k!r} is lxcri's own (it marks the stack's containers)")
        out[k] = v or ""
    return out


def _port(value: Any, path: str) -> str:
    if isinstance(value, dict):
        m = _mapping(value, path, ("target", "published", "host_ip", "protocol"))
        if "target" not in m:
            raise _err(path, "the long form needs target: (the container's port)")
        text = _string(m["target"], f"{path}.target", numbers=True)
        if m.get("published") is not None:
            text = _string(m["published"], f"{path}.published", numbers=True) + ":" + text
        if m.get("host_ip") is not None:
            ip = _string(m["host_ip"], f"{path}.host_ip")
            ip = f"[{ip}]" if ":" in ip else ip
            text = f"{ip}:{text}" if m.get("published") is not None else f"{ip}::{text}"
        if m.get("protocol") is not None:
            text += "/" + _string(m["protocol"], f"{path}.protocol")
    else:
        text = _string(value, path, numbers=True)
    _checked(path, lambda: o.parse_port(text))
    return text


def _volume_use(value: Any, path: str, folder: Path, declared: set[str]) -> VolumeUse:
    if isinstance(value, dict):
        m = _mapping(value, path, ("type", "source", "target", "read_only"))
        kind = _string(m.get("type", "volume"), f"{path}.type")
        if kind not in ("volume", "bind"):
            raise _err(f"{path}.type", f"{kind!r}: lxcri stacks know volume and bind")
        if "target" not in m:
            raise _err(path, "target: (the path in the container) is required")
        target = _string(m["target"], f"{path}.target")
        source = _string(m["source"], f"{path}.source") if m.get("source") is not None else ""
        ro = m.get("read_only", False)
        if not isinstance(ro, bool):
            raise _err(f"{path}.read_only", f"expected true or false, got {_kind(ro)}")
        if kind == "bind" and not source:
            raise _err(path, "a bind mount needs source:")
        mode = "ro" if ro else "rw"
    else:
        text = _string(value, path)
        parts = text.split(":")
        if len(parts) > 3 or not all(parts):
            raise _err(path, f"{text!r}: expected SOURCE:TARGET[:ro|rw] or TARGET")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise _err(path, f"{text!r}: unknown mode {mode!r}; use ro or rw")
        source, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
    target = _checked(path, lambda: o.check_ctr_path("volumes", target, target))
    ro_flag = mode == "ro"
    if not source:
        return VolumeUse("anonymous", "", target, ro_flag)
    if source.startswith("/"):
        if ".." in source.split("/") or "\x00" in source:
            raise _err(path, f"host path {source!r} must not contain '..'")
        return VolumeUse("bind", source, target, ro_flag)
    if source.startswith(".") or source.startswith("~") or "/" in source:
        return VolumeUse("bind", inside_path(folder, source, path), target, ro_flag)
    if source not in declared:
        raise _err(path, f"volume {source!r} is not declared in the top-level volumes:")
    return VolumeUse("volume", source, target, ro_flag)


def _healthcheck(value: Any, path: str) -> Healthcheck:
    m = _mapping(value, path, HEALTH_KEYS)
    disable = m.get("disable", False)
    if not isinstance(disable, bool):
        raise _err(f"{path}.disable", f"expected true or false, got {_kind(disable)}")
    test: str | None = None
    if "test" in m:
        raw = m["test"]
        p = f"{path}.test"
        if isinstance(raw, str):
            test = raw
        else:
            items = [_string(v, f"{p}[{i}]") for i, v in enumerate(_list(raw, p))]
            if not items or items[0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise _err(p, "a list starts with CMD, CMD-SHELL or NONE")
            if items[0] == "NONE":
                disable = True
            elif len(items) < 2:
                raise _err(p, f"{items[0]} needs a command after it")
            elif items[0] == "CMD-SHELL":
                if len(items) != 2:
                    raise _err(p, "CMD-SHELL takes one string (the shell command)")
                test = items[1]
            else:
                test = shlex.join(items[1:])
        if test is not None and not test.strip():
            raise _err(p, "the test command is empty")
    durations: dict[str, str | None] = {}
    for key in ("interval", "timeout", "start_period"):
        if m.get(key) is None:
            durations[key] = None
            continue
        text = _string(m[key], f"{path}.{key}")
        _checked(f"{path}.{key}", partial(o.parse_duration, text, key))
        durations[key] = text
    retries = m.get("retries")
    if retries is not None and (
        not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 1000
    ):
        raise _err(f"{path}.retries", "expected a whole number from 0 to 1000")
    return Healthcheck(
        test,
        durations["interval"],
        durations["timeout"],
        durations["start_period"],
        retries,
        disable,
    )


def _depends_on(value: Any, path: str) -> dict[str, Condition]:
    out: dict[str, Condition] = {}
    if isinstance(value, dict):
        for name, spec in _mapping(value, path, None).items():
            p = f"{path}.{name}"
            cond: Any = "service_started"
            if spec is not None:
                cond = _mapping(spec, p, ("condition",)).get("condition", "service_started")
            if cond not in CONDITIONS:
                raise _err(
                    f"{p}.condition",
                    f"{cond!r}: lxcri stacks know {' and '.join(CONDITIONS)}",
                )
            out[name] = cond
        return out
    for i, item in enumerate(_list(value, path)):
        out[_string(item, f"{path}[{i}]")] = "service_started"
    return out


#: names /etc/hosts already gives an address: a service named so would take it over
#: in the other containers (``localhost`` no longer the container itself)
_RESERVED_HOSTS = frozenset(
    ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "ip6-localnet",
     "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters")
)  # fmt: skip


def check_service_name(name: str, path: str) -> str:
    """A service name becomes a host name in the other containers' /etc/hosts."""
    if name.lower() in _RESERVED_HOSTS or name.lower().endswith(".localhost"):
        raise _err(path, f"service name {name!r} is a name /etc/hosts keeps for the container")
    if not o.is_hostname(name) or len(name) > 63:
        raise _err(
            path,
            f"service name {name!r}: use letters, digits, inner '-' and '.' "
            "(it is the host name the other services reach it by)",
        )
    return name


def _service(
    name: str, value: Any, path: str, folder: Path, declared: set[str], env_files: EnvFiles
) -> Service:
    m = _mapping(value, path, SERVICE_KEYS)
    if "image" not in m:
        raise _err(path, "image: is required (lxcri stacks do not build images)")
    image = _string(m["image"], f"{path}.image")
    if not image.strip():
        raise _err(f"{path}.image", "the image reference is empty")
    kw: dict[str, Any] = {}
    for key in ("command", "entrypoint"):
        if m.get(key) is not None:
            kw[key] = _argv(m[key], f"{path}.{key}")
    if m.get("environment") is not None:
        kw["environment"] = _env(m["environment"], f"{path}.environment")
    if m.get("env_file") is not None:
        raw = m["env_file"]
        p = f"{path}.env_file"
        files = [raw] if isinstance(raw, str) else _list(raw, p)
        kw["env_files"] = tuple(
            env_files(_string(f, p if isinstance(raw, str) else f"{p}[{i}]"), p)
            for i, f in enumerate(files)
        )
        for env_file in kw["env_files"]:  # its lines are checked now, values taken at `up`
            _checked(p, partial(o.parse_env_file, env_file.text, {}, source=env_file.path))
    if m.get("ports") is not None:
        p = f"{path}.ports"
        kw["ports"] = tuple(_port(v, f"{p}[{i}]") for i, v in enumerate(_list(m["ports"], p)))
    if m.get("volumes") is not None:
        p = f"{path}.volumes"
        kw["volumes"] = tuple(
            _volume_use(v, f"{p}[{i}]", folder, declared)
            for i, v in enumerate(_list(m["volumes"], p))
        )
    if m.get("depends_on") is not None:
        kw["depends_on"] = _depends_on(m["depends_on"], f"{path}.depends_on")
    if m.get("restart") is not None:
        text = _string(m["restart"], f"{path}.restart")
        _checked(f"{path}.restart", lambda: o.parse_restart(text))
        kw["restart"] = text
    if m.get("healthcheck") is not None:
        kw["healthcheck"] = _healthcheck(m["healthcheck"], f"{path}.healthcheck")
    if m.get("hostname") is not None:
        text = _string(m["hostname"], f"{path}.hostname")
        kw["hostname"] = _checked(f"{path}.hostname", lambda: o.parse_hostname(text, "hostname"))
    if m.get("user") is not None:
        text = _string(m["user"], f"{path}.user", numbers=True)
        _checked(f"{path}.user", lambda: o.parse_user(text))
        kw["user"] = text
    if m.get("working_dir") is not None:
        text = _string(m["working_dir"], f"{path}.working_dir")
        kw["working_dir"] = _checked(
            f"{path}.working_dir", lambda: o.check_ctr_path("working_dir", text, text)
        )
    if m.get("labels") is not None:
        kw["labels"] = _labels(m["labels"], f"{path}.labels")
    if m.get("mem_limit") is not None:
        text = _string(m["mem_limit"], f"{path}.mem_limit", numbers=True)
        _checked(f"{path}.mem_limit", lambda: o.parse_memory(text, "mem_limit"))
        kw["mem_limit"] = text
    if m.get("cpus") is not None:
        text = _string(m["cpus"], f"{path}.cpus", numbers=True)
        _checked(f"{path}.cpus", lambda: o.parse_cpus(text))
        kw["cpus"] = text
    return Service(name=name, image=image, **kw)


def default_name(folder: Path) -> str:
    """The folder's name as docker compose makes a project name of it: lower case, only
    letters, digits, '_' and '-', starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", folder.name.lower())
    return name.lstrip("_-")


def parse_stack(data: Any, folder: Path, where: str = "") -> Stack:
    """A Stack from a loaded document; ``folder`` is where relative paths start."""
    top = _mapping(data if data is not None else {}, "", None)
    for key in top:
        if key not in TOP_KEYS and not key.startswith("x-"):
            raise _err(key, f"unknown key {key!r}; lxcri stacks know {', '.join(TOP_KEYS)}")
    if "version" in top and not isinstance(top["version"], str | int | float):
        raise _err("version", f"expected a string, got {_kind(top['version'])}")
    if top.get("name") is not None:
        name = _string(top["name"], "name")
        if not _STACK_NAME.match(name):
            raise _err(
                "name",
                f"{name!r}: use lower-case letters, digits, '_' and '-', "
                "starting with a letter or digit",
            )
    else:
        name = default_name(folder)
        if not name:
            raise _err("", f"the folder name {folder.name!r} makes no stack name; add a name: key")
    declared: list[str] = []
    if top.get("volumes") is not None:
        for key, spec in _mapping(top["volumes"], "volumes", None).items():
            p = f"volumes.{key}"
            if not _VOLUME_KEY.match(key):
                raise _err(p, f"volume name {key!r}: use letters, digits, '_', '.' and '-'")
            if spec is not None:
                _mapping(spec, p, ())
            ids.check_id(f"{name}_{key}", f"volume name at {p}", SpecError)
            declared.append(key)
    if top.get("services") is None:
        raise _err("services", "at least one service is required")
    services: dict[str, Service] = {}
    env_files = EnvFiles(folder)
    for svc, spec in _mapping(top["services"], "services", None).items():
        path = f"services.{svc}"
        check_service_name(svc, path)
        ids.check_id(f"{name}-{svc}-1", f"container name for {path}", SpecError)
        services[svc] = _service(svc, spec, path, folder, set(declared), env_files)
    if not services:
        raise _err("services", "at least one service is required")
    for service in services.values():
        where = f"services.{service.name}.depends_on"
        for dep in service.depends_on:
            if dep not in services:
                raise _err(where, f"no service named {dep!r}")
            if dep == service.name:
                raise _err(where, "a service cannot depend on itself")
    stack = Stack(name=name, folder=folder, services=services, volumes=tuple(declared))
    start_order(stack)  # a cycle is an error of the file, found before anything runs
    return stack


def load_stack(path: Path, env: Mapping[str, str] | None = None) -> Stack:
    """Read and check the stack file at ``path`` (its errors start with the file's name);
    ``$VAR``s take their values from ``env`` (default: this process's), then from the
    ``.env`` file next to it (see ``interpolate``)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"{path}: not a regular file")
            data = f.read(MAX_FILE + 1)
    except OSError as e:
        raise SpecError(f"{path}: {e.strerror}") from None
    if len(data) > MAX_FILE:
        raise SpecError(f"{path}: larger than {MAX_FILE} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    folder = path.absolute().parent
    try:
        values = dict(os.environ if env is None else env)
        if os.path.lexists(folder / ".env"):
            dotenv = parse_dotenv(read_env_file(folder, ".env", ".env").text)
            values = {**dotenv, **values}
        return parse_stack(interpolate(load_yaml(text, ""), values), folder)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
