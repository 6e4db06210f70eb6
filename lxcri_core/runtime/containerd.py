"""containerd's drop-in registering lxcri-runtime, and the ``imports`` line that loads it.

containerd's runc v2 shim runs any binary with runc's command line
(``BinaryName``), so lxcri-runtime registers as a CRI runtime of type
``io.containerd.runc.v2``. The CRI plugin's table is
``plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME`` in config
version 2 (containerd 1.6/1.7) and
``plugins."io.containerd.cri.v1.runtime".containerd.runtimes.NAME`` in
version 3 (containerd 2.x). containerd reads a drop-in only when the main
config imports it (``imports = [...]``, a top-level key): :func:`with_import`
adds that line, or the path to an existing one.
"""

from __future__ import annotations

import re

from lxcri_core.errors import ConfigError

DROPIN_NAME = "lxcri.toml"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_CRI_TABLE = {
    2: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes',
    3: 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes',
}


def _toml_str(value: str) -> str:
    if any(c in value for c in '"\\\n\r\t') or not value.isprintable():
        raise ConfigError(f"{value!r} cannot be written as a plain TOML string")
    return f'"{value}"'


#: The annotation a pod passes for ``--pve-register`` (lxcri_pve.runtime.pve_register).
PVE_ANNOTATION = "org.lxcri.pve-register"


def render_dropin(version: int, name: str, binary: str, pve_register: bool = False) -> str:
    """The drop-in's text for containerd config ``version`` (2 or 3)."""
    if version not in _CRI_TABLE:
        raise ConfigError(f"containerd config version {version}: 2 (containerd 1.x) or 3 (2.x)")
    if not _NAME.match(name):
        raise ConfigError(f"runtime name {name!r}: letters, digits, '-' and '_' only")
    if not binary.startswith("/"):
        raise ConfigError(f"runtime binary {binary!r} must be an absolute path")
    table = f"{_CRI_TABLE[version]}.{name}"
    which = "containerd 1.6/1.7" if version == 2 else "containerd 2.x"
    lines = [
        f"# lxcri-runtime as the CRI runtime {name!r} ({which}); written by",
        "# `lxcri containerd-config`. Pods choose it with a RuntimeClass whose",
        f"# handler is {name}; ctr with --runc-binary {binary}.",
        f"version = {version}",
        "",
        f"[{table}]",
        '  runtime_type = "io.containerd.runc.v2"',
    ]
    if pve_register:  # the CRI passes only the annotations listed here into the bundle
        lines.append(f'  pod_annotations = ["{PVE_ANNOTATION}"]')
        lines.append(f'  container_annotations = ["{PVE_ANNOTATION}"]')
    lines += [f"  [{table}.options]", f"    BinaryName = {_toml_str(binary)}", ""]
    return "\n".join(lines)


_IMPORTS = re.compile(r"^imports\s*=\s*\[(?P<items>[^\]]*)\]\s*(#.*)?$", re.M)


def with_import(main_text: str | None, dropin: str, version: int) -> str | None:
    """The main config with ``dropin`` imported; None when it imports it already.

    A missing main config becomes a minimal one (``version`` and ``imports``):
    containerd 1.x reads no drop-in directory of its own.
    """
    quoted = _toml_str(dropin)
    if main_text is None or not main_text.strip():
        return f"version = {version}\nimports = [{quoted}]\n"
    m = _IMPORTS.search(main_text)
    if m:
        items = [i.strip() for i in m["items"].split(",") if i.strip()]
        if quoted in items or _glob_covers(items, dropin):
            return None
        new = f"imports = [{', '.join([*items, quoted])}]"
        return main_text[: m.start()] + new + main_text[m.end() :]
    # a top-level key: before the first table, after a leading version line
    lines = main_text.splitlines(keepends=True)
    at = 0
    for i, line in enumerate(lines):
        if line.lstrip().startswith("["):
            break
        if line.startswith("version"):
            at = i + 1
    lines.insert(at, f"imports = [{quoted}]\n")
    return "".join(lines)


def _glob_covers(items: list[str], path: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(path, i.strip('"')) for i in items)
