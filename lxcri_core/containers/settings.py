"""``config``/``set`` of a plain-LXC container, in pct's terms.

``config_get`` shows a container as ``pct config`` would (``memory`` in MiB,
``net0``, ``mpN``, ``tags``...). ``config_set`` changes what can change on
plain LXC without recreating the container: the memory and CPU limits (in
the record, in the LXC config for the next start, and live in the running
container's cgroup) and the tags. Anything else is one clear error.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers import lxc, pct_props
from lxcri_core.containers.listing import with_vmid
from lxcri_core.containers.locks import _name_lock
from lxcri_core.containers.record import load_record, lxcpath, save_record, state_dir
from lxcri_core.errors import BackendError, SpecError
from lxcri_core.fsutil import atomic_write
from lxcri_core.spec.lxc_config import CPU_PERIOD

_MIB = 1024 * 1024
#: What ``set`` may change on plain LXC.
SETTABLE = ("memory", "cores", "tags")


def config_get(cfg: Config, name: str) -> dict[str, Any]:
    rec = with_vmid(cfg, load_record(cfg.root, name))
    spec = rec.spec
    out: dict[str, Any] = {"vmid": rec.vmid, "hostname": spec.hostname or rec.name}
    res = spec.resources
    if res.memory is not None:
        out["memory"] = res.memory // _MIB
    if res.cores is not None:
        out["cores"] = res.cores
    if res.cpus is not None:
        out["cpulimit"] = res.cpus
    net = spec.network
    if net.mode != "none":
        parts = ["name=eth0", f"bridge={rec.bridge or net.bridge}"]
        parts.append(f"ip={net.ip}" if net.ip else "ip=dhcp")
        if net.gateway:
            parts.append(f"gw={net.gateway}")
        if net.ip6:
            parts.append(f"ip6={net.ip6}")
        out["net0"] = ",".join(parts)
    for i, m in enumerate(spec.mounts):
        src = m.source or m.target
        out[f"mp{i}"] = f"{src},mp={m.target}" + (",ro=1" if m.read_only else "")
    if rec.tags:
        out["tags"] = ";".join(rec.tags)
    out["unprivileged"] = 0 if spec.security.privileged else 1
    out["arch"] = os.uname().machine
    out["image"] = rec.image
    out["digest"] = rec.image_digest
    out["storage"] = rec.storage
    return out


def config_set(cfg: Config, name: str, changes: Mapping[str, str | None]) -> None:
    bad = sorted(set(changes) - set(SETTABLE))
    if bad:
        raise BackendError(
            f"cannot change {', '.join(bad)} of a plain LXC container (only "
            f"{', '.join(SETTABLE)}); recreate it, or use --backend pve-local"
        )
    with _name_lock(cfg, name):
        rec = load_record(cfg.root, name)
        res = rec.spec.resources
        tags = rec.tags
        if "memory" in changes:
            v = changes["memory"]
            mem = None if v is None else int(pct_props.memory_mib(v)[:-1]) * _MIB
            res = dataclasses.replace(res, memory=mem)
        if "cores" in changes:
            v = changes["cores"]
            if v is not None and (not v.isdigit() or int(v) < 1):
                raise SpecError(f"--cores {v!r}: give a whole number of CPUs, at least 1")
            res = dataclasses.replace(res, cores=None if v is None else int(v))
        if "tags" in changes:
            v = changes["tags"]
            tags = () if v is None else pct_props.parse_tags(v)
        spec = dataclasses.replace(rec.spec, resources=res)
        rec = dataclasses.replace(rec, spec=spec, tags=tags)
        if res != rec.spec.resources or "memory" in changes or "cores" in changes:
            _rewrite_limits(cfg, name, res)
        save_record(cfg.root, rec)


def _limit_lines(res: Any) -> list[tuple[str, str]]:
    """The LXC config's limit keys as ``spec.lxc_config`` renders them."""
    out: list[tuple[str, str]] = []
    if res.memory is not None:
        out += [
            ("lxc.cgroup.memory.limit_in_bytes", str(res.memory)),
            ("lxc.cgroup2.memory.max", str(res.memory)),
        ]
    cpus = res.cpus if res.cpus is not None else res.cores
    if cpus is not None:
        quota = round(cpus * CPU_PERIOD)
        out += [
            ("lxc.cgroup.cpu.cfs_period_us", str(CPU_PERIOD)),
            ("lxc.cgroup.cpu.cfs_quota_us", str(quota)),
            ("lxc.cgroup2.cpu.max", f"{quota} {CPU_PERIOD}"),
        ]
    return out


_LIMIT_KEYS = {
    "lxc.cgroup.memory.limit_in_bytes",
    "lxc.cgroup2.memory.max",
    "lxc.cgroup.cpu.cfs_period_us",
    "lxc.cgroup.cpu.cfs_quota_us",
    "lxc.cgroup2.cpu.max",
}


def _rewrite_limits(cfg: Config, name: str, res: Any) -> None:
    path = state_dir(cfg.root, name) / "config"
    kept = [
        ln for ln in path.read_text().splitlines() if ln.split("=", 1)[0].strip() not in _LIMIT_KEYS
    ]
    # before the hooks: the keys' place does not matter to LXC, but people read it
    new = [f"{k} = {v}" for k, v in _limit_lines(res)]
    atomic_write(path, ("\n".join(kept + new) + "\n").encode(), mode=0o600)
    if lxc.state(name, lxcpath(cfg)) == "STOPPED":
        return
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    live = [
        (k.split(".", 2)[2], v) for k, v in _limit_lines(res) if k.startswith("lxc.cgroup2.") == v2
    ]
    if res.memory is None:  # a limit removed: unlimited now
        live.append(("memory.max", "max") if v2 else ("memory.limit_in_bytes", "-1"))
    if res.cpus is None and res.cores is None:
        live.append(("cpu.max", "max") if v2 else ("cpu.cfs_quota_us", "-1"))
    for key, value in live:
        proc = subprocess.run(
            ["lxc-cgroup", "-n", name, "-P", str(lxcpath(cfg)), "--", key, value],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            why = (proc.stderr.strip() or "lxc-cgroup failed").splitlines()[0]
            raise BackendError(
                f"container {name}: {key}={value} is saved for its next start but could "
                f"not be applied now: {why}"
            )
