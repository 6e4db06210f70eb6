"""Turn a pct.conf into an LXC config and run the CT with LXC, as pve-container does.

The config follows PVE::LXC::update_lxc_config for the keys lxcri uses:
lxc.arch, the common/userns includes, the 100000 id map for ``unprivileged:
1``, lxc.uts.name from ``hostname``, memory/swap/cpulimit/cpuunits as cgroup
v1 keys (this host's controllers are v1) followed by the cgroup v2 keys PVE 7+
writes (LXC ignores them on a legacy hierarchy), the rootfs, one veth
``vethVMIDiN`` per netN, the CT's raw ``lxc.*`` lines in order, and
``entrypoint`` as lxc.init.cmd.

Where the simulator differs from a PVE node, on purpose:
- the rootfs volume's directory is the rootfs path (PVE mounts it at
  /var/lib/lxc/VMID/rootfs in its pre-start hook) and mpN are lxc.mount.entry
  bind mounts (PVE mounts them in its mount hook);
- the veth joins its bridge through lxc.net.N.link (PVE's lxcnetaddbr script);
- a static ip/gw is configured by LXC (as PVE 9.1's host-managed=1 does);
  ip=dhcp runs no DHCP client.

The hookscript runs as PVE::GuestHelpers::exec_hookscript runs it: ``SCRIPT
VMID PHASE``, pre-start before lxc-start (a failure aborts the start),
post-start after it, pre-stop before a stop/shutdown, post-stop from the CT's
LXC post-stop hook (so it runs when the CT's init exits on its own too).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.pvesim import pctconf, schema
from tests.pvesim.state import PveError, Sim, TaskLog

HOOKRUN = Path(__file__).resolve().parent / "hookrun.py"
#: What PVE's lxcnetaddbr (lxc.net.N.script.up) does with tag=, trunks= and rate= (OVS
#: port settings, PVE::Network::tap_rate_limit), done by lxcri's own net-up hook here.
NET_UP = Path(__file__).resolve().parents[2] / "hooks" / "lxcri-net-up"
LXC_CONFIG_DIR = Path("/usr/share/lxc/config")


def prop(key: str, value: str) -> dict[str, object]:
    """Parse a netN/mpN/rootfs/features property string of a stored config."""
    name = key.rstrip("0123456789") + ("[n]" if key[-1].isdigit() else "")
    props = schema.config_schema()
    fmt = props[name]["format"]
    res, _ = schema.parse_property_string(fmt, value, key)
    return res


def volume_dir(sim: Sim, volume: str) -> Path:
    """Host directory of a rootfs/mp volume: a storage volume, or a bind-mounted host path."""
    if volume.startswith("/"):
        return Path(volume)
    path, _ = sim.volume_path(volume)
    return path


def hookscript_path(sim: Sim, volid: str) -> Path:
    # PVE::GuestHelpers::check_hookscript
    path, kind = sim.volume_path(volid)
    if kind != "snippets":
        raise PveError(f"'{volid}' is not in the snippets directory")
    if not path.is_file():
        raise PveError(f"script '{volid}' does not exist")
    if not os.access(path, os.X_OK):
        raise PveError(f"script '{volid}' is not executable")
    return path


def exec_hookscript(
    sim: Sim, conf: pctconf.PctConf, vmid: int, phase: str, log: TaskLog, stop_on_error: bool
) -> None:
    volid = conf.main.get("hookscript")
    if not volid:
        return
    try:
        script = hookscript_path(sim, volid)
        res = subprocess.run(
            [str(script), str(vmid), phase],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=300,
        )
        if res.stdout:
            log(res.stdout)
        if res.returncode != 0:
            raise PveError(f"command '{script} {vmid} {phase}' failed: exit code {res.returncode}")
    except PveError as e:
        msg = f"hookscript error for {vmid} on {phase}: {e}"
        if stop_on_error:
            raise PveError(msg) from None
        log(f"WARN: {msg}")


def _cgroup_keys(conf: pctconf.PctConf) -> list[str]:
    out = []
    memory = int(conf.main.get("memory", "512"))
    swap = int(conf.main.get("swap", "0"))
    out.append(f"lxc.cgroup.memory.limit_in_bytes = {memory * 1024 * 1024}")
    if Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists():
        out.append(f"lxc.cgroup.memory.memsw.limit_in_bytes = {(memory + swap) * 1024 * 1024}")
    cpulimit = conf.main.get("cpulimit")
    if cpulimit and float(cpulimit) > 0:
        out.append("lxc.cgroup.cpu.cfs_period_us = 100000")
        out.append(f"lxc.cgroup.cpu.cfs_quota_us = {int(100000 * float(cpulimit))}")
    if conf.main.get("cpuunits"):
        out.append(f"lxc.cgroup.cpu.shares = {conf.main['cpuunits']}")
    # What PVE writes on a cgroup v2 host; LXC warns and ignores them here.
    high = memory * 1024 * 1024 - (memory * 1024 * 1024 // 1024 * 16)
    out.append(f"lxc.cgroup2.memory.max = {memory * 1024 * 1024}")
    out.append(f"lxc.cgroup2.memory.high = {high}")
    out.append(f"lxc.cgroup2.memory.swap.max = {swap * 1024 * 1024}")
    if cpulimit and float(cpulimit) > 0:
        out.append(f"lxc.cgroup2.cpu.max = {int(100000 * float(cpulimit))} 100000")
    return out


def render(sim: Sim, vmid: int, conf: pctconf.PctConf) -> str:
    m = conf.main
    raw: list[str] = []
    raw.append(f"lxc.arch = {m.get('arch', 'amd64')}")
    ostype = m.get("ostype", "unmanaged")
    inc = LXC_CONFIG_DIR / f"{ostype}.common.conf"
    raw.append(f"lxc.include = {inc if inc.exists() else LXC_CONFIG_DIR / 'common.conf'}")
    unpriv = m.get("unprivileged") == "1"
    custom_idmap = any(k == "lxc.idmap" for k, _ in conf.lxc)
    if unpriv or custom_idmap:
        inc = LXC_CONFIG_DIR / f"{ostype}.userns.conf"
        raw.append(f"lxc.include = {inc if inc.exists() else LXC_CONFIG_DIR / 'userns.conf'}")
    raw.append("lxc.monitor.unshare = 1")
    if unpriv and not custom_idmap:
        raw.append("lxc.idmap = u 0 100000 65536")
        raw.append("lxc.idmap = g 0 100000 65536")
    if m.get("console") == "0":
        raw.append("lxc.console.path = none")
    raw.append(f"lxc.tty.max = {m.get('tty', '2')}")
    raw.append("lxc.environment = TERM=linux")
    raw.append(f"lxc.uts.name = {m.get('hostname') or f'CT{vmid}'}")
    raw += _cgroup_keys(conf)
    if "rootfs" not in m:
        raise PveError("missing 'rootfs' configuration")
    rootfs = prop("rootfs", m["rootfs"])
    raw.append(f"lxc.rootfs.path = dir:{volume_dir(sim, str(rootfs['volume']))}")
    for key in sorted(
        (k for k in m if k.startswith("net") and k[3:].isdigit()), key=lambda k: int(k[3:])
    ):
        idx = key[3:]
        net = prop(key, m[key])
        raw.append(f"lxc.net.{idx}.type = veth")
        raw.append(f"lxc.net.{idx}.veth.pair = veth{vmid}i{idx}")
        if net.get("hwaddr"):
            raw.append(f"lxc.net.{idx}.hwaddr = {net['hwaddr']}")
        raw.append(f"lxc.net.{idx}.name = {net['name']}")
        if net.get("mtu"):
            raw.append(f"lxc.net.{idx}.mtu = {net['mtu']}")
        if net.get("bridge") and not net.get("link_down"):
            raw.append(f"lxc.net.{idx}.link = {net['bridge']}")
            raw.append(f"lxc.net.{idx}.flags = up")
            up = _net_up_args(net)
            if up:
                cmd = shlex.join([sys.executable, str(NET_UP), *up])
                raw.append(f"lxc.net.{idx}.script.up = {cmd}")
        ip, gw = str(net.get("ip", "")), net.get("gw")
        if "/" in ip:
            raw.append(f"lxc.net.{idx}.ipv4.address = {ip}")
            if gw:
                raw.append(f"lxc.net.{idx}.ipv4.gateway = {gw}")
        ip6, gw6 = str(net.get("ip6", "")), net.get("gw6")
        if "/" in ip6:
            raw.append(f"lxc.net.{idx}.ipv6.address = {ip6}")
            if gw6:
                raw.append(f"lxc.net.{idx}.ipv6.gateway = {gw6}")
    for key in sorted(
        (k for k in m if k.startswith("mp") and k[2:].isdigit()), key=lambda k: int(k[2:])
    ):
        mp = prop(key, m[key])
        src = volume_dir(sim, str(mp["volume"]))
        dest = str(mp["mp"]).lstrip("/")
        opts = "rbind,create=dir" + (",ro" if mp.get("ro") else "")
        raw.append(f"lxc.mount.entry = {src} {dest} none {opts} 0 0")
    entrypoint = m.get("entrypoint")
    if entrypoint:
        raw.append(f"lxc.init.cmd = {entrypoint}")
    for k, v in conf.lxc:
        if k == "lxc.environment.runtime":
            # Proxmox's lxc-pve has the key; Debian's LXC lacks it (5.0 on bookworm and
            # 6.0.4 on trixie refuse it): plain lxc.environment reaches init the same way
            k = "lxc.environment"
        elif k == "lxc.environment.hooks":
            continue
        raw.append(f"{k} = {v}")
    # The LXC post-stop hook runs the hookscript's post-stop phase (lxc-pve-poststop-hook).
    hook = f"{shlex.quote(sys.executable)} {shlex.quote(str(HOOKRUN))} {shlex.quote(str(sim.root))}"
    raw.append(f"lxc.hook.post-stop = {hook}")
    return "\n".join(raw) + "\n"


def _net_up_args(net: dict[str, object]) -> list[str]:
    """The net-up hook's arguments for a netN: tag, trunks, rate (bytes/s), and, on an OVS
    bridge, txcsum=off (its userspace datapath needs the container end's checksums done)."""
    args = []
    if net.get("tag"):
        args.append(f"tag={int(str(net['tag']))}")
    if net.get("trunks"):
        args.append("trunks=" + ",".join(str(int(t)) for t in str(net["trunks"]).split(";")))
    if net.get("rate"):
        args.append(f"rate={int(float(str(net['rate'])) * 1024 * 1024)}")
    bridge = str(net.get("bridge", ""))
    if not Path(f"/sys/class/net/{bridge}/bridge").is_dir() and shutil.which("ovs-vsctl"):
        ovs = subprocess.run(["ovs-vsctl", "br-exists", bridge], capture_output=True, check=False)
        if ovs.returncode == 0:
            args.append("txcsum=off")
    return args


def lxc(sim: Sim, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [args[0], "-P", str(sim.lxcpath), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def state(sim: Sim, vmid: int) -> tuple[str, int | None]:
    """('running'|'stopped', init pid) from LXC itself."""
    if not (sim.lxcpath / str(vmid) / "config").exists():
        return "stopped", None
    res = lxc(sim, "lxc-info", "-n", str(vmid), "-s", "-p")
    info = dict(line.split(":", 1) for line in res.stdout.splitlines() if ":" in line)
    st = info.get("State", "").strip()
    if res.returncode != 0 or st not in ("RUNNING", "STARTING", "STOPPING", "FROZEN"):
        return "stopped", None
    pid = info.get("PID", "").strip()
    return "running", int(pid) if pid.isdigit() else None


def init_argv(conf: pctconf.PctConf) -> list[str] | None:
    """The init command's words: the last raw lxc.init.cmd, else ``entrypoint``."""
    cmd = conf.main.get("entrypoint")
    for k, v in conf.lxc:
        if k == "lxc.init.cmd":
            cmd = v
    if not cmd:
        return None
    try:
        return shlex.split(cmd)
    except ValueError as e:
        raise PveError(f"unable to parse entrypoint '{cmd}': {e}") from None


def write_config(sim: Sim, vmid: int, conf: pctconf.PctConf) -> Path:
    d = sim.lxcpath / str(vmid)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    (d / "config").write_text(render(sim, vmid, conf))
    return d


def start(sim: Sim, vmid: int, conf: pctconf.PctConf, log: TaskLog) -> None:
    if state(sim, vmid)[0] == "running":
        raise PveError(f"CT {vmid} already running")
    exec_hookscript(sim, conf, vmid, "pre-start", log, stop_on_error=True)
    d = write_config(sim, vmid, conf)
    logfile = d / "lxc.log"
    cmd = ["lxc-start", "-n", str(vmid), "-d", "-o", str(logfile), "-l", "WARN"]
    argv = init_argv(conf)
    if argv:
        # Debian's LXC (5.0, and 6.0.4 on trixie) splits lxc.init.cmd on blanks only;
        # Proxmox's lxc-pve honours the quotes its create path writes. Hand LXC the
        # words, split PVE's way, as argv instead.
        cmd += ["--", *argv]
    res = lxc(sim, *cmd)
    if res.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-10:] if logfile.exists() else []
        for line in tail:
            log(line)
        raise PveError(f"startup for container '{vmid}' failed")
    (d / "started").write_text(str(time.time()))
    host_managed_dhcp(sim, vmid, conf, log)
    exec_hookscript(sim, conf, vmid, "post-start", log, stop_on_error=False)


# udhcpc's event script, run by the host in the CT's network namespace.
DHCP_SCRIPT = """#!/bin/sh
case "$1" in
bound|renew)
    ip addr flush dev "$interface" scope global
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


def host_managed_dhcp(sim: Sim, vmid: int, conf: pctconf.PctConf, log: TaskLog) -> None:
    """``ip=dhcp,host-managed=1``: the host leases the address for the CT (PVE 9.1).

    busybox udhcpc runs in the CT's network namespace (host binaries, host
    mount namespace), takes one lease and applies it; the CT's own software
    never sees a DHCP client. Renewals are not done: leases outlive tests.
    """
    nets = [(k, prop(k, v)) for k, v in conf.main.items() if re.fullmatch(r"net\d+", k)]
    wanted = [(k, n) for k, n in nets if n.get("ip") == "dhcp" and n.get("host-managed")]
    if not wanted:
        return
    _, pid = state(sim, vmid)
    if pid is None:
        return
    script = sim.root / "tmp" / "udhcpc-event.sh"
    if not script.exists():
        script.write_text(DHCP_SCRIPT)
        script.chmod(0o755)
    for key, net in wanted:
        res = subprocess.run(
            [
                "nsenter",
                "-t",
                str(pid),
                "-n",
                "busybox",
                "udhcpc",
                "-i",
                str(net["name"]),
                "-n",
                "-q",
                "-f",
                "-t",
                "5",
                "-T",
                "1",
                "-s",
                str(script),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if res.returncode != 0:
            raise PveError(f"DHCP on {key} ({net['name']}) failed: {res.stderr.strip()}")
        log(f"{key}: DHCP lease taken by the host")


def interfaces(sim: Sim, vmid: int) -> list[dict[str, object]]:
    """GET /interfaces: the CT's links and addresses, read in its network namespace."""
    _, pid = state(sim, vmid)
    if pid is None:
        raise PveError(f"CT {vmid} not running")
    res = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    out: list[dict[str, object]] = []
    for link in json.loads(res.stdout or "[]"):
        entry: dict[str, object] = {
            "name": link["ifname"],
            "hwaddr": link.get("address", ""),
            "hardware-address": link.get("address", ""),
            "ip-addresses": [],
        }
        for a in link.get("addr_info", []):
            fam = "inet" if a["family"] == "inet" else "inet6"
            cidr = f"{a['local']}/{a['prefixlen']}"
            entry.setdefault(fam, cidr)
            addrs = entry["ip-addresses"]
            assert isinstance(addrs, list)
            addrs.append(
                {"ip-address": a["local"], "ip-address-type": fam, "prefix": a["prefixlen"]}
            )
        out.append(entry)
    return out


def _post_stop_output(d: Path, before: int, log: TaskLog) -> None:
    out = d / "hookscript.log"
    if out.exists():
        data = out.read_text(errors="replace")[before:]
        if data:
            log(data)


def stop(
    sim: Sim, vmid: int, conf: pctconf.PctConf, log: TaskLog, timeout: int | None, force: bool
) -> None:
    """Hard stop (timeout None) or clean shutdown; PVE's vm_stop/vm_shutdown."""
    if state(sim, vmid)[0] != "running":
        raise PveError(f"CT {vmid} not running")
    exec_hookscript(sim, conf, vmid, "pre-stop", log, stop_on_error=True)
    d = sim.lxcpath / str(vmid)
    out = d / "hookscript.log"
    before = len(out.read_text(errors="replace")) if out.exists() else 0
    if timeout is None:
        res = lxc(sim, "lxc-stop", "-n", str(vmid), "-k")
    else:
        # --nokill: a CT that ignores its halt signal is PVE's "did not stop" (or forceStop).
        res = lxc(
            sim, "lxc-stop", "-n", str(vmid), "-t", str(timeout), "--nokill", timeout=timeout + 60
        )
        if res.returncode != 0 and state(sim, vmid)[0] == "running":
            if not force:
                _post_stop_output(d, before, log)
                raise PveError("container did not stop")
            log("forcing stop")
            res = lxc(sim, "lxc-stop", "-n", str(vmid), "-k")
    if state(sim, vmid)[0] == "running":
        raise PveError(f"stopping CT {vmid} failed: {res.stderr.strip()}")
    _post_stop_output(d, before, log)
