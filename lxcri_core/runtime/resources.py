"""``linux.resources`` of config.json -> ``lxc.cgroup.*`` (v1) and ``lxc.cgroup2.*`` keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxcri_core.runtime.fields import bad, integer, items, obj, text, unsupported

_CGROUP_KEY = re.compile(r"^[a-z_][a-z0-9_.]{0,63}\Z")


def resource_lines(res: Mapping[str, Any]) -> list[str]:
    """``linux.resources`` -> ``lxc.cgroup.*`` (v1, this host) and ``lxc.cgroup2.*`` keys."""
    out: list[tuple[str, str, str]] = []  # (v1 key, v2 key, value); "" = no such key

    def num(v: Any, path: str, lo: int = -1) -> str:
        return str(integer(v, f"linux.resources.{path}", lo))

    mem = obj(res.get("memory"), "linux.resources.memory")
    if mem.get("limit") is not None:
        out.append(("memory.limit_in_bytes", "memory.max", num(mem["limit"], "memory.limit")))
    if mem.get("reservation") is not None:
        v = num(mem["reservation"], "memory.reservation")
        out.append(("memory.soft_limit_in_bytes", "memory.low", v))
    if mem.get("swap") is not None:
        out.append(("memory.memsw.limit_in_bytes", "", num(mem["swap"], "memory.swap")))
    if mem.get("swappiness") is not None:
        v = num(mem["swappiness"], "memory.swappiness", 0)
        out.append(("memory.swappiness", "", v))
    if mem.get("disableOOMKiller") is True:
        out.append(("memory.oom_control", "", "1"))
    unsupported(
        mem,
        ("kernel", "kernelTCP", "useHierarchy", "checkBeforeUpdate"),
        "linux.resources.memory.",
        "LXC has no such key",
    )
    cpu = obj(res.get("cpu"), "linux.resources.cpu")
    if cpu.get("shares") is not None:
        out.append(("cpu.shares", "", num(cpu["shares"], "cpu.shares", 2)))
    if cpu.get("quota") is not None or cpu.get("period") is not None:
        quota = num(cpu.get("quota", -1), "cpu.quota")
        period = num(cpu.get("period", 100000), "cpu.period", 1000)
        out.append(("cpu.cfs_period_us", "", period))
        out.append(("cpu.cfs_quota_us", "cpu.max", quota))
        out[-1] = ("cpu.cfs_quota_us", "cpu.max", quota)
    for key, v1 in (
        ("realtimeRuntime", "cpu.rt_runtime_us"),
        ("realtimePeriod", "cpu.rt_period_us"),
    ):
        if cpu.get(key) is not None:
            out.append((v1, "", num(cpu[key], f"cpu.{key}")))
    for key, v1 in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            val = text(cpu[key], f"linux.resources.cpu.{key}")
            if not re.match(r"^[0-9,-]{1,256}\Z", val):
                raise bad(f"linux.resources.cpu.{key}", f"{val!r} is not a CPU list")
            out.append((v1, v1, val))
    unsupported(cpu, ("idle", "burst"), "linux.resources.cpu.", "cgroup v1 has no such key")
    pids = obj(res.get("pids"), "linux.resources.pids")
    if pids.get("limit") is not None:
        lim = integer(pids["limit"], "linux.resources.pids.limit", -1)
        out.append(("pids.max", "pids.max", "max" if lim <= 0 else str(lim)))
    blkio = obj(res.get("blockIO"), "linux.resources.blockIO")
    if blkio.get("weight") is not None:
        out.append(("blkio.weight", "io.bfq.weight", num(blkio["weight"], "blockIO.weight", 10)))
    unsupported(
        blkio,
        (
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ),
        "linux.resources.blockIO.",
        "not translated to LXC keys",
    )
    for i, h in enumerate(items(res.get("hugepageLimits"), "linux.resources.hugepageLimits")):
        h = obj(h, f"linux.resources.hugepageLimits[{i}]")
        size = text(h.get("pageSize", ""), f"linux.resources.hugepageLimits[{i}].pageSize")
        if not re.match(r"^[0-9]{1,4}[KMG]B\Z", size):
            raise bad(f"linux.resources.hugepageLimits[{i}].pageSize", f"{size!r}")
        v = num(h.get("limit"), f"hugepageLimits[{i}].limit", 0)
        out.append((f"hugetlb.{size}.limit_in_bytes", f"hugetlb.{size}.max", v))
    unsupported(res, ("network", "rdma"), "linux.resources.", "LXC has no such key")
    lines = []
    for v1, v2, value in out:
        if v1:
            lines.append(f"lxc.cgroup.{v1} = {value}")
        if v2:
            lines.append(f"lxc.cgroup2.{v2} = {value}")
    for key, value in obj(res.get("unified"), "linux.resources.unified").items():
        if not _CGROUP_KEY.match(key):
            raise bad(f"linux.resources.unified.{key}", "is not a cgroup file name")
        lines.append(f"lxc.cgroup2.{key} = {text(value, f'linux.resources.unified.{key}')}")
    rules = items(res.get("devices"), "linux.resources.devices")
    if rules:
        for i, r in enumerate(rules):
            r = obj(r, f"linux.resources.devices[{i}]")
            kind = r.get("type") or "a"
            if kind not in ("a", "b", "c"):
                raise bad(f"linux.resources.devices[{i}].type", f"{kind!r}")
            access = r.get("access") or "rwm"
            if not re.match(r"^[rwm]{1,3}\Z", str(access)):
                raise bad(f"linux.resources.devices[{i}].access", f"{access!r}")
            major = r.get("major")
            minor = r.get("minor")
            maj = "*" if major is None or major == -1 else str(integer(major, "major", 0))
            mnr = "*" if minor is None or minor == -1 else str(integer(minor, "minor", 0))
            rule = "a" if kind == "a" and maj == mnr == "*" else f"{kind} {maj}:{mnr} {access}"
            verb = "allow" if r.get("allow") is True else "deny"
            if kind == "a" and rule != "a":
                rule = f"a {maj}:{mnr} {access}"
            lines.append(f"lxc.cgroup.devices.{verb} = {rule}")
            lines.append(f"lxc.cgroup2.devices.{verb} = {rule}")
    return lines
