"""``/etc/lxcri/config.yaml`` as shipped: every setting, commented out, with its doc.

``python3 -m lxcri_core.config_example`` prints it; the Debian package is
built with it. The docs are the ``#:`` comments above each field of
``Config`` (lxcri_core/config.py), read from that file's source, and the
values are the fields' defaults, so the shipped file cannot drift from the
code: tests/unit/test_config_example.py checks every field is in it and that
the file with every setting uncommented is a valid config.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

from lxcri_core import config as config_module
from lxcri_core.config import Config

#: Fields whose default is "unset" (None, or empty for auto-detection, which
#: the file cannot spell): an example value instead.
_EXAMPLES = {
    "backend": "pve-local",
    "pve_token_file": "/etc/lxcri/pve-token",
    "pve_ca_file": "/etc/lxcri/pve-ca.pem",
    "pve_password_file": "/etc/lxcri/pve-password",
    "exporter_tls_cert": "/etc/lxcri/exporter.pem",
    "exporter_tls_key": "/etc/lxcri/exporter.key",
}
#: Fields the file nests under another key (``parse_config`` reads them so).
_NESTED = {"insecure_registries": ("registries", "insecure"), "mirrors": ("registries", "mirrors")}

_HEADER = """\
# lxcri's settings. Every setting is listed, commented out, at its default:
# remove the leading '#' of a setting's line(s) to change it.
# Precedence: command-line flags > environment (LXCRI_*) > this file > defaults.
# Another file: --config FILE or LXCRI_CONFIG. See lxcri(1).
"""


def field_docs() -> dict[str, list[str]]:
    """Each Config field's ``#:`` comment lines, from the source of lxcri_core/config.py."""
    src = Path(config_module.__file__).read_text()
    lines = src.splitlines()
    tree = ast.parse(src)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    docs: dict[str, list[str]] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc: list[str] = []
            i = node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                doc.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            docs[node.target.id] = doc
    return docs


def _yaml(value: Any) -> str:
    """A default as YAML flow text (JSON is YAML)."""
    import yaml

    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str) and value and yaml.safe_load(value) == value:
        return value  # plain, as a person writes it
    return json.dumps(value)


def render() -> str:
    docs = field_docs()
    defaults = Config()
    out = [_HEADER]
    registries: list[str] = []
    for f in dataclasses.fields(Config):
        doc = ["# " + line if line else "#" for line in docs.get(f.name, [])]
        value = getattr(defaults, f.name)
        if f.name in _NESTED:
            key = _NESTED[f.name][1]
            shown = dict(value) if isinstance(value, dict) else value
            registries += [*("#  " + d for d in doc), f"#  {key}: {_yaml(shown)}"]
            continue
        if f.name == "auths":
            out += [
                *doc,
                "#auths:",
                "#  registry.example.com: {username: bot, password: s3cret}",
                "",
            ]
            continue
        if f.name in _EXAMPLES:
            doc.append("# (unset by default; an example:)")
            value = _EXAMPLES[f.name]
        out += [*doc, f"#{f.name}: {_yaml(value)}", ""]
    out += [
        "# Registries: plain-http ones and pull-through mirrors.",
        "#registries:",
        *registries,
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
