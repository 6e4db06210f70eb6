"""``lxcri inspect-security VMID|NAME`` and ``lxcri inspect-security --host``."""

from __future__ import annotations

from typing import Any

import click
from lxcri_pve.cli.common import (
    emit_json,
    emit_table,
    get_backend,
    get_config,
    lxc_name,
    output_option,
)
from lxcri_pve.cli.completion import container_names


def _names(caps: tuple[str, ...] | None) -> str:
    if caps is None:
        return "ALL"
    return ",".join(c.lower() for c in caps) or "none"


def _host(output: str) -> None:
    from dataclasses import asdict

    from lxcri_core.security.hostfacts import read_host_facts

    facts = read_host_facts()
    if output == "json":
        emit_json(
            {
                **asdict(facts),
                "userns": {**asdict(facts.userns), "available": facts.userns.available},
            }
        )
        return
    cg, sc, un = facts.cgroup, facts.seccomp, facts.userns
    clone = "n/a" if un.unprivileged_clone is None else ("1" if un.unprivileged_clone else "0")
    rows = [
        ("lsm", ",".join(facts.lsms) or "unknown", f"from {facts.lsm_source}"),
        ("apparmor", facts.apparmor.state, facts.apparmor.detail),
        ("selinux", facts.selinux.state, facts.selinux.detail),
        ("cgroup", cg.version, f"v2 at {cg.v2_mount}" if cg.v2_mount else ""),
        ("cgroup v1 controllers", ",".join(cg.v1_controllers) or "-", ""),
        ("cgroup v2 controllers", ",".join(cg.v2_controllers) or "-", ""),
        ("seccomp", "supported" if sc.supported else "unavailable", " ".join(sc.actions)),
        (
            "user namespaces",
            "available" if un.available else "disabled",
            f"max_user_namespaces={un.max_user_namespaces} unprivileged_userns_clone={clone}",
        ),
    ]
    emit_table(("FACT", "VALUE", "DETAIL"), rows)


def _container(ref: str, output: str) -> None:
    from lxcri_core.security.report import plain_lxc_report

    rep = plain_lxc_report(get_config(), get_backend(), lxc_name(ref, "inspect-security"))
    if output == "json":
        emit_json(rep.to_json())
        return
    p = rep.process
    rows: list[tuple[str, Any, Any]] = [
        ("status", rep.status, f"init pid {rep.pid}" if rep.pid else ""),
        ("privileged", "yes" if rep.privileged else "no", "; ".join(rep.idmaps)),
        ("root on the host", "" if rep.host_root_uid is None else f"uid {rep.host_root_uid}", ""),
        ("capabilities (spec)", _names(rep.capabilities), ""),
        ("init capabilities effective", _names(p.effective) if p else "", ""),
        ("init capabilities bounding", _names(p.bounding) if p else "", ""),
        ("init capabilities ambient", _names(p.ambient) if p else "", ""),
        *(
            (
                (f"process {rep.app_pid} effective", _names(a.effective), ""),
                (f"process {rep.app_pid} permitted", _names(a.permitted), ""),
                (f"process {rep.app_pid} bounding", _names(a.bounding), ""),
                (f"process {rep.app_pid} ambient", _names(a.ambient), ""),
            )
            if (a := rep.app)
            else ()
        ),
        (
            "no_new_privs",
            "yes" if rep.no_new_privileges else "no",
            "" if not p else f"kernel: {int(p.no_new_privs)}",
        ),
        (
            "seccomp",
            rep.seccomp,
            "" if not p else f"kernel: {p.seccomp}, {p.seccomp_filters} filters",
        ),
        *(("seccomp not carried", item, "") for item in rep.seccomp_unsupported),
        ("apparmor", rep.apparmor_profile, rep.apparmor),
        ("selinux", rep.selinux_context or "-", rep.selinux),
        ("features", ",".join(f"{k}={int(v)}" for k, v in rep.features.items()), ""),
    ]
    emit_table(("ITEM", "VALUE", "DETAIL"), rows)


@click.command("inspect-security")
@click.argument("container", required=False, shell_complete=container_names)
@click.option("--host", "host", is_flag=True, help="The host's kernel security facts instead.")
@output_option
def inspect_security(container: str | None, host: bool, output: str) -> None:
    """Show a container's capabilities, seccomp, LSM labels, id map and features, as
    configured and as the kernel reports them for its running init; or, with
    --host, the kernel's LSMs, cgroup layout, seccomp and user namespaces.

    \b
    Examples:
      lxcri inspect-security 100
      lxcri inspect-security --host -o json
    """
    if host == (container is not None):
        raise click.UsageError("give a container (VMID or NAME) or --host")
    if host:
        _host(output)
    else:
        assert container is not None
        _container(container, output)
