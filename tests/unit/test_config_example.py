"""/etc/lxcri/config.yaml as the package ships it (lxcri_core.config_example):
every Config field is in it with its doc, and uncommented it is a valid config."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from lxcri_core.config import Config, load_config, parse_config
from lxcri_core.config_example import field_docs, render
from lxcri_core.errors import ConfigError

#: The file's key of each field that is not a top-level key of its own.
NESTED = {"insecure_registries": "insecure", "mirrors": "mirrors"}


def _uncommented(text: str) -> str:
    """Every setting line (``#key: ...``, ``#  nested: ...``) without its ``#``."""
    return "\n".join(re.sub(r"^#(?=\S|  )", "", ln) for ln in text.splitlines())


def test_every_config_field_is_in_the_shipped_file_with_its_doc() -> None:
    text = render()
    docs = field_docs()
    for f in dataclasses.fields(Config):
        key = NESTED.get(f.name, f.name)
        assert re.search(rf"^#\s*{key}:", text, re.M), f"{f.name} missing from config.yaml"
        assert docs[f.name], f"Config.{f.name} has no #: doc comment"
        assert docs[f.name][0] in text


def test_the_file_uncommented_is_a_valid_config_at_the_defaults() -> None:
    data = yaml.safe_load(_uncommented(render()))
    cfg = parse_config(data, "config.yaml")
    defaults = Config()
    for f in dataclasses.fields(Config):
        if f.name in (
            "auths",
            "backend",
            "pve_token_file",
            "pve_ca_file",
            "pve_password_file",
            "exporter_tls_cert",
            "exporter_tls_key",
        ):
            continue  # shown with example values
        assert getattr(cfg, f.name) == getattr(defaults, f.name), f.name
    assert set(data) - {"registries"} | {"insecure_registries", "mirrors"} == {
        f.name for f in dataclasses.fields(Config)
    }


def test_the_file_as_shipped_changes_nothing() -> None:
    assert yaml.safe_load(render()) is None  # all comments: the defaults apply


def test_lxcri_loads_the_shipped_file_as_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text(render())
    assert load_config(env={"LXCRI_CONFIG": str(f)}) == Config()


def test_a_file_of_comments_and_a_setting_still_reads_the_setting(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text(render() + "\nkeep_generations: 7\n")
    assert load_config(env={"LXCRI_CONFIG": str(f)}).keep_generations == 7
    f.write_text(render() + "\nkeep_generations 7\n")  # not a mapping: still refused
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(env={"LXCRI_CONFIG": str(f)})
