"""``lxcri inspect CONTAINER``: one container's state, config, mounts, network and limits.

The document has the shape of ``docker container inspect`` (``state``,
``config``, ``mounts``, ``network_settings``, ``host_config``; the CLI prints a
list of one) with lxcri's one naming style for JSON: snake_case keys, ports
as objects, sizes in bytes (see ``lxcri_pve.cli.output``).

Secrets: the values of environment variables that the image does not set
itself (``-e``, ``--env-file``, or an image variable given another value)
are shown as ``KEY=***`` unless ``show_secrets``; an image's own variables
are public (anyone who pulls it reads them), and so are the ``HOSTNAME``,
``HOME`` and ``TERM`` lxcri sets. When the image is no longer in
the store, every value is masked. Whoever may read the container's state
may ask for them: the values are in its config anyway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers.record import ContainerRecord, load_record, state_dir
from lxcri_core.containers.volumes import volumes_dir
from lxcri_core.spec.model import ContainerSpec

MASK = "***"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def image_env(cfg: Config, manifest_digest: str) -> set[str] | None:
    """The ``KEY=VALUE`` items of the image's own config, or None if it is gone."""
    from lxcri_core.errors import LxcriError
    from lxcri_core.media import Manifest, load_json
    from lxcri_core.store import Store

    try:
        store = Store(cfg.image_store)
        manifest = Manifest.parse(store.read_blob(manifest_digest))
        config = load_json(store.read_blob(manifest.config.digest), "image config")
    except (LxcriError, OSError, ValueError):
        return None
    env = (config.get("config") or {}).get("Env") or []
    return {str(e) for e in env}


def mask_env(env: tuple[str, ...], public: set[str] | None) -> list[str]:
    """``env`` with the values not in ``public`` replaced by ``***`` (pure)."""
    out = []
    for item in env:
        key, sep, _ = item.partition("=")
        shown = public is not None and item in public
        out.append(item if shown or not sep else f"{key}={MASK}")
    return out


def _mounts(root: Path, rec: ContainerRecord) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    anon = 0
    for m in rec.spec.mounts:
        if m.kind == "bind":
            source, name = m.source, ""
        elif m.kind == "volume":
            source, name = str(volumes_dir(root) / m.source), m.source
        else:  # as volumes.prepare_volumes numbers them
            name = f"anon-{rec.id}-{anon}"
            source, anon = str(volumes_dir(root) / name), anon + 1
        out.append(
            {
                "type": "bind" if m.kind == "bind" else "volume",
                "name": name,
                "source": source,
                "destination": m.target,
                "read_only": m.read_only,
            }
        )
    return out


def _config(spec: ContainerSpec, env: list[str]) -> dict[str, Any]:
    hc = spec.healthcheck
    return {
        "hostname": spec.hostname,
        "domainname": spec.domainname,
        "user": f"{spec.user.uid}:{spec.user.gid}",
        "additional_gids": list(spec.user.additional_gids),
        "entrypoint": list(spec.entrypoint),
        "cmd": list(spec.cmd),
        "args": list(spec.args),  # what runs: entrypoint + cmd after the options
        "env": env,
        "working_dir": spec.working_dir,
        "labels": dict(spec.labels),
        "exposed_ports": list(spec.exposed_ports),
        "stop_signal": spec.stop_signal,
        "stop_timeout": spec.stop_timeout,
        "tty": spec.tty,
        "healthcheck": None
        if hc is None
        else {
            "test": list(hc.test),
            "interval": hc.interval,
            "timeout": hc.timeout,
            "start_period": hc.start_period,
            "retries": hc.retries,
        },
    }


def inspect_container(cfg: Config, name: str, *, show_secrets: bool = False) -> dict[str, Any]:
    """Everything about container ``name`` (its name, not an id: see ``listing.find``)."""
    from lxcri_core.containers import listing

    rec = load_record(cfg.root, name)
    st = listing.status(cfg, name)
    sdir = state_dir(cfg.root, name)
    health = _read_json(sdir / "health.json")
    spec = rec.spec
    public = image_env(cfg, rec.image_digest)
    if public is not None:  # what lxcri itself sets, as docker does, is no secret either
        public |= {f"HOSTNAME={spec.hostname}", f"HOME={spec.user.home}", "TERM=xterm"}
    env = list(spec.env) if show_secrets else mask_env(spec.env, public)
    res = spec.resources
    net = spec.network
    sec = spec.security
    return {
        "id": rec.id,
        "name": rec.name,
        "created": rec.created,
        "image": rec.image,
        "image_digest": rec.image_digest,
        "storage": rec.storage,
        "rootfs": rec.rootfs,
        "state_dir": str(sdir),
        "log_path": str(sdir / "console.log"),
        "state": {
            "status": st.status,
            "status_text": st.status_text,
            "running": st.status == "running",
            "paused": st.status == "paused",
            "restarting": st.status == "restarting",
            "pid": st.pid,
            "exit_code": st.exit_code,
            "error": st.error,
            "started_at": st.started_at,
            "finished_at": st.finished_at,
            "restart_count": st.restarts,
            "health": None
            if spec.healthcheck is None
            else {
                "status": st.health or str(health.get("status", "")),
                "failing_streak": int(health.get("failing_streak", 0) or 0),
                "log": list(health.get("log") or []),
            },
        },
        "config": _config(spec, env),
        "env_masked": not show_secrets,
        "mounts": _mounts(cfg.root, rec),
        "network_settings": {
            "mode": net.mode,
            "bridge": rec.bridge or (net.bridge if net.mode != "none" else ""),
            "ip_address": rec.ipv4,
            "gateway": net.gateway,
            "ipv6_address": rec.ipv6,
            "ipv6_gateway": net.gateway6,
            "mac_address": net.hwaddr,
            "mtu": net.mtu,
            "dns": list(net.dns),
            "extra_hosts": [f"{h}:{ip}" for h, ip in net.extra_hosts],
            "ports": [
                {
                    "host_ip": p.host_ip,
                    "host_port": p.host_port,
                    "container_port": p.container_port,
                    "protocol": p.protocol,
                }
                for p in spec.ports
            ],
        },
        "host_config": {
            "auto_remove": rec.auto_remove,
            "restart_policy": {
                "name": spec.restart.name,
                "maximum_retry_count": spec.restart.max_retries,
            },
            "resources": {
                "memory": res.memory,
                "swap": res.swap,
                "cores": res.cores,
                "cpus": res.cpus,
                "pids_limit": res.pids_limit,
            },
            "privileged": sec.privileged,
            "unprivileged": sec.unprivileged,
            "capabilities": None if sec.capabilities is None else list(sec.capabilities),
            "seccomp": sec.seccomp,
            "no_new_privileges": sec.no_new_privileges,
            "nesting": sec.nesting,
        },
    }
