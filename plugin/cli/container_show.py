"""``lxcri inspect CONTAINER`` for people: the inspect document as aligned sections."""

from __future__ import annotations

from typing import Any

import click


def _lines(rows: list[tuple[str, Any]], indent: str = "") -> None:
    rows = [(k, v) for k, v in rows if v not in (None, "", [], {})]
    if not rows:
        return
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        click.echo(f"{indent}{key + ':':<{width}}{value}")


def _limit(value: Any, unit: str = "") -> str:
    return "unlimited" if value in (None, 0) else f"{value}{unit}"


def _bytes(n: int | None) -> str:
    if not n:
        return "unlimited"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def render_container(doc: dict[str, Any]) -> None:
    st, cfg, net, host = doc["state"], doc["config"], doc["network_settings"], doc["host_config"]
    health = st.get("health") or {}
    _lines(
        [
            ("Name", doc["name"]),
            ("Id", doc["id"]),
            ("Status", st["status_text"] or st["status"]),
            ("State", st["status"]),
            ("Exit code", st["exit_code"]),
            ("Error", st["error"]),
            ("Health", health.get("status")),
            ("Pid", st["pid"]),
            ("Started", st["started_at"]),
            ("Finished", st["finished_at"]),
            ("Restarts", st["restart_count"] or None),
            ("Created", doc["created"]),
            ("Image", doc["image"]),
            ("Image digest", doc["image_digest"]),
            ("Storage", f"{doc['storage']} ({doc['rootfs']})"),
            ("Log", doc["log_path"]),
        ]
    )
    click.echo("Config:")
    _lines(
        [
            ("Entrypoint", cfg["entrypoint"]),
            ("Cmd", cfg["cmd"]),
            ("Working dir", cfg["working_dir"]),
            ("User", cfg["user"]),
            ("Hostname", cfg["hostname"]),
            ("Stop", f"{cfg['stop_signal']}, SIGKILL after {cfg['stop_timeout']} s"),
            ("Healthcheck", (cfg["healthcheck"] or {}).get("test")),
        ],
        "  ",
    )
    if cfg["env"]:
        hidden = " (values set for this container hidden: --show-secrets)" * doc["env_masked"]
        click.echo(f"  Env:{hidden}")
        for item in cfg["env"]:
            click.echo(f"    {item}")
    if cfg["labels"]:
        click.echo("  Labels:")
        for k, v in sorted(cfg["labels"].items()):
            click.echo(f"    {k}={v}")
    if doc["mounts"]:
        click.echo("Mounts:")
        for m in doc["mounts"]:
            ro = " (read-only)" if m["read_only"] else ""
            click.echo(f"  {m['source']} -> {m['destination']} [{m['type']}]{ro}")
    click.echo("Network:")
    ports = [
        f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
        for p in net["ports"]
    ]
    _lines(
        [
            ("Mode", net["mode"]),
            ("Bridge", net["bridge"]),
            ("Address", net["ip_address"]),
            ("Gateway", net["gateway"]),
            ("IPv6 address", net["ipv6_address"]),
            ("Ports", ", ".join(ports)),
        ],
        "  ",
    )
    res = host["resources"]
    pol = host["restart_policy"]
    restart = pol["name"] + (f":{pol['maximum_retry_count']}" if pol["maximum_retry_count"] else "")
    click.echo("Host config:")
    _lines(
        [
            ("Restart", restart),
            ("Memory", _bytes(res["memory"])),
            ("CPUs", _limit(res["cpus"])),
            ("Cores", _limit(res["cores"])),
            ("Pids limit", _limit(res["pids_limit"])),
            ("Privileged", "yes" if host["privileged"] else "no"),
            ("Seccomp", host["seccomp"]),
        ],
        "  ",
    )
