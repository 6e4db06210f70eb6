"""Start order, cycles, names, and what a service becomes as ``lxcri run`` options (pure)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.spec.options import RunOptions
from lxcri_core.stacks.apply import run_options, stack_key
from lxcri_core.stacks.model import EnvFile, Healthcheck, Service, Stack, VolumeUse
from lxcri_core.stacks.parse import parse_stack
from lxcri_core.stacks.plan import container_name, start_order, volume_name


def stack(services: dict[str, object], name: str = "s") -> Stack:
    return parse_stack({"name": name, "services": services}, Path("/nonexistent"))


def test_order_puts_dependencies_first_ties_in_file_order() -> None:
    st = stack(
        {
            "web": {"image": "i", "depends_on": ["api", "cache"]},
            "api": {"image": "i", "depends_on": {"db": {"condition": "service_healthy"}}},
            "cache": {"image": "i"},
            "db": {"image": "i"},
            "admin": {"image": "i", "depends_on": ["db"]},
        }
    )
    assert start_order(st) == ["db", "api", "cache", "web", "admin"]


def test_a_cycle_is_one_error_naming_it() -> None:
    deps = {"a": "b", "b": "c", "c": "a"}
    services = {
        n: Service(n, "i", depends_on={deps[n]: "service_started"} if n in deps else {})
        for n in ("a", "b", "c", "d")
    }
    st = Stack("s", Path("/x"), services)
    with pytest.raises(SpecError) as e:
        start_order(st)
    assert str(e.value) == "services: depends_on makes a cycle: a -> b -> c -> a"


def test_names_carry_the_stack_name() -> None:
    st = stack({"web": {"image": "i"}}, name="shop")
    assert container_name(st, "web") == "shop-web-1"
    assert volume_name(st, "data") == "shop_data"


def test_run_options_of_a_service() -> None:
    st = Stack("shop", Path("/srv/shop"), {}, ("data",))
    svc = Service(
        name="web",
        image="img",
        command=("--port", "80"),
        entrypoint=("/bin/app", "serve"),
        environment=("B=from-environment", "FROM_HOST", "UNSET"),
        env_files=(EnvFile("a.env", "A=1\nB=from-file\n"),),
        ports=("8080:80",),
        volumes=(
            VolumeUse("volume", "data", "/data", True),
            VolumeUse("bind", "/srv/shop/static", "/static"),
            VolumeUse("anonymous", "", "/cache"),
        ),
        restart="always",
        healthcheck=Healthcheck("true", "1s", retries=3),
        hostname="web",
        user="1000",
        working_dir="/srv",
        labels={"tier": "front"},
        mem_limit="64m",
        cpus="0.5",
    )
    opts = run_options(st, svc, {"db": "10.88.0.5"}, host_env={"FROM_HOST": "h"})
    assert opts.name == "shop-web-1"
    assert (opts.entrypoint, opts.args) == ("/bin/app", ("serve", "--port", "80"))
    # the env file first, environment: after it (later wins), unset host names dropped
    assert opts.env == ("A=1", "B=from-file", "B=from-environment", "FROM_HOST=h")
    assert opts.volumes == ("shop_data:/data:ro", "/srv/shop/static:/static", "/cache")
    assert opts.publish == ("8080:80",) and opts.add_hosts == ("db:10.88.0.5",)
    assert (opts.health_cmd, opts.health_interval, opts.health_retries) == ("true", "1s", "3")
    assert (opts.memory, opts.cpus, opts.restart, opts.workdir) == ("64m", "0.5", "always", "/srv")
    labels = dict(item.split("=", 1) for item in opts.labels)
    assert labels["io.lxcri.stack"] == "shop" and labels["io.lxcri.stack.service"] == "web"
    assert labels["tier"] == "front"
    # the settings digest: the same for the same settings, another for a change
    again = run_options(st, svc, {"db": "10.88.0.5"}, host_env={"FROM_HOST": "h"})
    assert again == opts
    moved = run_options(st, svc, {"db": "10.88.0.6"}, host_env={"FROM_HOST": "h"})
    assert (
        dict(i.split("=", 1) for i in moved.labels)["io.lxcri.stack.config"]
        != labels["io.lxcri.stack.config"]
    )


def test_entrypoint_reset_and_disabled_healthcheck() -> None:
    st = Stack("s", Path("/x"), {})
    svc = Service("a", "i", entrypoint=(), healthcheck=Healthcheck(disable=True))
    opts = run_options(st, svc, host_env={})
    assert opts.entrypoint == "" and opts.args == () and opts.no_healthcheck
    plain = run_options(st, dataclasses.replace(svc, entrypoint=None, healthcheck=None))
    assert plain.entrypoint is None and not plain.no_healthcheck


def test_settings_digest_is_keyed_so_a_label_tests_no_secret_guess(tmp_path: Path) -> None:
    st = Stack("s", Path("/x"), {})
    svc = Service("a", "img", environment=("PASSWORD=hunter2",))

    def digest(opts: RunOptions) -> str:
        return dict(i.split("=", 1) for i in opts.labels)["io.lxcri.stack.config"]

    root = tmp_path / "root"
    key = stack_key(root)
    assert len(key) == 32 and stack_key(root) == key  # made once, then read
    assert os.stat(root / "stack.key").st_mode & 0o777 == 0o600
    assert list(root.iterdir()) == [root / "stack.key"]  # no temporary left
    opts = run_options(st, svc, host_env={}, key=key)
    # without the key, the digest of a guess does not match the label
    unkeyed = run_options(st, svc, host_env={})
    assert digest(opts) != digest(unkeyed)
    assert digest(run_options(st, svc, host_env={}, key=key)) == digest(opts)
