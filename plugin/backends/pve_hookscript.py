"""lxcri's Proxmox guest hookscript: ``SCRIPT VMID PHASE``, for the CTs lxcri created.

Proxmox runs only hookscripts from a snippets storage; ``install`` writes a
small executable there (``pve_hookscript``, default
``local:snippets/lxcri-hookscript``) that calls ``main`` with lxcri's state
root baked in, since PVE runs it with an almost empty environment. Guests
without an lxcri record (``<root>/pve/VMID/state.json``) are left alone.

Phases (PVE::GuestHelpers::exec_hookscript; LXC_TARGET=reboot at a reboot's
post-stop):

- ``pre-start``: make the directories of the CT's volumes private again
  (``PveLocalBackend.private_volumes``: a CT made before lxcri did so, or a
  volume moved or restored by PVE, which makes them 0755; memoised while its
  inputs are unchanged, ``pve_hookstate``), then remove whatever an earlier
  run left published (a crash: ``published.json`` is written before publishing).
- ``post-start``: learn the CT's IPv4 address, the static one of its net0 or,
  for ``ip=dhcp``, the one its eth0 carries in its network namespace, and
  publish its ports to it (nftables DNAT, ``lxcri_core.network.ports``).
  An address a DHCP client has not obtained yet is waited for by a detached
  watcher (``lxcri-watch`` phase) that publishes once it appears and ends
  when the CT stops. An address the CT claims outside the subnets of its
  bridge, or one of the host's own, is refused: a hostile CT must not steer
  the host's DNAT to the host itself or elsewhere.
- ``post-stop`` (also on reboot): unpublish, so nothing stays published to an
  address the next start may not have.

Failures go to stderr (PVE copies a hookscript's output into the task log)
and to ``hooks.log`` beside the state; a failing pre-start aborts the start.

Every phase is a new interpreter, so the phases import little (``pve_hookstate``:
no dataclasses, pathlib or config on their common paths; nftables in-process);
the pre-start's volume directories are memoised while their inputs are unchanged,
and it unpublishes only when ``published.json`` says a run published something.
"""

from __future__ import annotations

import os
import sys
import time

from lxcri_pve.backends.pve_hookstate import (
    HOOK_LOG,
    PUBLISHED,
    STOP_REQUESTED,
    HookState,
    discard,
    load_hook_state,
    state_dir,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a phase)
if TYPE_CHECKING:
    import ipaddress
    from pathlib import Path

    from lxcri_pve.backends.pve_state import CtState

    #: The record as the phases read it (HookState), or as the backend has it.
    State = HookState | CtState

#: Seconds post-start waits inline for a DHCP address before leaving it to the watcher.
INLINE_WAIT = 2.0
#: Seconds the watcher waits for a DHCP address.
WATCH_WAIT = 300.0
WATCH_PHASE = "lxcri-watch"
SUPERVISE_PHASE = "lxcri-supervise"
_HEADER = "# lxcri's Proxmox VE hookscript, written by lxcri; do not edit\n"


def chain_id(vmid: int | str) -> str:
    """The container id of a CT's nftables chains (apart from plain-LXC names)."""
    return f"pve-{vmid}"


_STUB = """import os, sys
R = %r
a = sys.argv[1:]


def fast(vmid, phase):
    d = os.path.join(R, "pve", vmid)
    state = os.path.join(d, "state.json")
    if not os.path.exists(state):
        return True  # not lxcri's guest
    if phase == "pre-stop":
        open(os.path.join(d, "stop.requested"), "a").close()
        return True
    if phase == "post-stop" and not os.path.exists(os.path.join(d, "published.json")):
        return True  # nothing published: nothing to take back
    return False


if len(a) == 2 and a[0].isdigit() and fast(a[0], a[1]):
    sys.exit(0)
from lxcri_pve.backends.pve_hookscript import main

sys.exit(main(a, R))
"""


def script_text(root: Path) -> str:
    """The installed script. A guest without an lxcri record, pre-stop (a marker file)
    and post-stop with nothing published are handled before lxcri is imported: they
    cost little more than the interpreter's start-up."""
    return f"#!{sys.executable}\n" + _HEADER + _STUB % str(root)


def install(path: Path, root: Path) -> None:
    """Write the hookscript to ``path`` when it is missing or differs (idempotent)."""
    from lxcri_core.fsutil import atomic_write

    text = script_text(root)
    try:
        if path.read_text() == text and os.access(path, os.X_OK):
            return
    except OSError:
        pass
    if path.exists() and _HEADER not in path.read_text(errors="replace"):
        from lxcri_core.errors import BackendError

        raise BackendError(
            f"{path} exists and is not lxcri's hookscript; remove it or set pve_hookscript"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode(), mode=0o755)
    os.chmod(path, 0o755)


class _Log:
    def __init__(self, sdir: str, vmid: str, phase: str) -> None:
        from lxcri_core.hooks.hooklog import rotate_if_big

        self.path = os.path.join(sdir, HOOK_LOG)
        self.prefix = f"lxcri hookscript: CT {vmid} {phase}"
        rotate_if_big(self.path)

    def __call__(self, msg: str, err: bool = False) -> None:
        line = f"{self.prefix}: {msg}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            with open(self.path, "a") as f:
                f.write(f"{stamp} {line}\n")
        except OSError:
            pass
        print(line, file=sys.stderr if err else sys.stdout, flush=True)


def main(argv: list[str], root: str) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: lxcri-hookscript VMID PHASE", file=sys.stderr)
        return 2
    vmid, phase = argv
    sdir = state_dir(root, vmid)
    try:
        st = load_hook_state(root, vmid)
    except Exception as e:  # a corrupt record: say so, and let PVE abort a start
        print(f"lxcri hookscript: CT {vmid} {phase}: {e}", file=sys.stderr)
        return 1 if phase == "pre-start" else 0
    if st is None:
        return 0  # not lxcri's
    log = _Log(sdir, vmid, phase)
    if phase not in _TIMED:
        return _phase(st, sdir, root, vmid, phase, log)
    t0 = time.monotonic()
    rc = 1
    try:
        rc = _phase(st, sdir, root, vmid, phase, log)
        return rc
    finally:  # the phase's duration, for the exporter
        from lxcri_core.metrics import counters

        counters.record(root, "hook", phase, time.monotonic() - t0, rc == 0)


#: The phases PVE runs (their durations are counted); the watcher and supervisor
#: phases run as long as the CT does.
_TIMED = ("pre-start", "post-start", "pre-stop", "post-stop")


def _phase(st: State, sdir: str, root: str, vmid: str, phase: str, log: _Log) -> int:
    try:
        if phase == "pre-start":
            _private_volumes(st, sdir)
            if os.path.exists(os.path.join(sdir, PUBLISHED)):  # what a crash left published
                _unpublish(st, sdir)
        elif phase == "post-start":
            _supervise(st, sdir)
            _post_start(st, sdir, log)
        elif phase == "pre-stop":
            open(os.path.join(sdir, STOP_REQUESTED), "a").close()
        elif phase == "post-stop":
            _unpublish(st, sdir)
            if st.ports:
                log(f"ports unpublished (target {os.environ.get('LXC_TARGET', 'stop')})")
        elif phase == WATCH_PHASE:
            _watch(st, sdir, log)
        elif phase == SUPERVISE_PHASE:
            from pathlib import Path

            from lxcri_pve.backends.pve_state import load_state
            from lxcri_pve.backends.pve_supervise import supervise

            full = load_state(Path(root), vmid)
            pid = init_pid(st)
            if full is not None and pid is not None:
                supervise(full, Path(sdir), pid)
        return 0
    except Exception as e:  # every failure, one line, where PVE shows it
        log(f"failed: {e}", err=True)
        return 1


def _private_volumes(st: State, sdir: str) -> None:
    """PveLocalBackend.private_volumes, or its memoised outcome while every input
    of it is unchanged (pve_hookstate)."""
    from lxcri_pve.backends import pve_hookstate as hs

    memo = hs.memo_dirs(sdir)
    if memo is not None:
        for path, gid in memo:
            hs.private_dir(path, gid)
        return
    from lxcri_pve.backends.pve_local import PveLocalBackend

    from lxcri_core.config import load_config

    be = PveLocalBackend(load_config())
    # the inputs first: one that changes meanwhile makes the memo stale, never wrong
    key = hs.memo_key(str(be.conf_path(st.vmid)), str(be.cfg.pve_root / "storage.cfg"))
    done = be.private_volumes(st.vmid)
    if any(shared for _, _, shared in done):  # a pool's mountpoint is zfs's to say
        discard(os.path.join(sdir, hs.PRIVATE_MEMO))
        return
    hs.save_memo(sdir, key, [(str(p), gid) for p, gid, _ in done])


def _unpublish(st: State, sdir: str) -> None:
    if not st.ports:
        return
    from lxcri_core.network.ports import unpublish

    unpublish(chain_id(st.vmid), table=st.nft_table)
    discard(os.path.join(sdir, PUBLISHED))


def init_pid(st: State) -> int | None:
    import subprocess

    res = subprocess.run(
        ["lxc-info", "-P", st.lxcpath, "-n", str(st.vmid), "-p", "-H"],
        capture_output=True,
        text=True,
        check=False,
    )
    out = res.stdout.strip()
    return int(out) if res.returncode == 0 and out.isdigit() else None


def ct_addresses(pid: int, dev: str) -> list[ipaddress.IPv4Interface]:
    """The IPv4 addresses on ``dev`` in the network namespace of ``pid``."""
    import ipaddress
    import json
    import subprocess

    res = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-j", "-4", "addr", "show", "dev", dev],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        return []
    out = []
    for link in json.loads(res.stdout or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                out.append(ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}"))
    return out


def bridge_networks(bridge: str) -> list[ipaddress.IPv4Network]:
    import ipaddress
    import json
    import subprocess

    res = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", bridge], capture_output=True, text=True
    )
    nets = []
    for link in json.loads(res.stdout or "[]") if res.returncode == 0 else []:
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network)
    return nets


def host_addresses() -> set[ipaddress.IPv4Address]:
    import ipaddress
    import json
    import subprocess

    res = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True)
    out = set()
    for link in json.loads(res.stdout or "[]") if res.returncode == 0 else []:
        for a in link.get("addr_info", []):
            out.add(ipaddress.IPv4Address(a["local"]))
    return out


def acceptable(st: State, addr: ipaddress.IPv4Interface) -> str | None:
    """Why ``addr`` (claimed by the CT) must not be a DNAT target, or None."""
    ip = addr.ip
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is not a unicast address"
    if ip in host_addresses():
        return f"{ip} is one of the host's own addresses"
    nets = bridge_networks(st.bridge) if st.bridge else []
    if nets and not any(ip in n for n in nets):
        return f"{ip} is outside the subnets of bridge {st.bridge} ({', '.join(map(str, nets))})"
    return None


def _publish(st: State, sdir: str, addr: ipaddress.IPv4Interface, log: _Log) -> None:
    import json

    from lxcri_core.fsutil import atomic_write
    from lxcri_core.network.ports import RecordPort, publish

    ports = [
        RecordPort(
            container_port=p.container_port,
            host_port=p.host_port,
            protocol="udp" if p.proto == "udp" else "tcp",
            host_ip=p.host_ip,
        )
        for p in st.ports
    ]
    # the marker first: whatever a crash leaves published, the next pre-start takes back
    atomic_write(os.path.join(sdir, PUBLISHED), json.dumps({"ipv4": str(addr.ip)}).encode())
    guard: list[dict[str, object]] = []
    localnet = bool(st.bridge) and any(_reaches_loopback(p.host_ip) for p in st.ports)
    if localnet:
        # so 127.0.0.1:PORT reaches the CT from the host, as on lxcri's own bridge: the
        # loopback guard on the bridge (lxcri_core.network.localnet) in the ports'
        # transaction, route_localnet only once it is in
        from lxcri_core.network.localnet import guard_commands

        guard = guard_commands(st.bridge, st.nft_table)  # none when it is in place
    publish(chain_id(st.vmid), ports, addr, table=st.nft_table, before=guard)
    if localnet:
        from lxcri_core.network.localnet import route_localnet_sysctl

        route_localnet_sysctl(st.bridge)
    log(f"published {', '.join(map(str, st.ports))} to {addr.ip}")


def _reaches_loopback(host_ip: str) -> bool:
    return host_ip in ("", "0.0.0.0", "::") or host_ip.startswith("127.")


def _learn(st: State, pid: int) -> ipaddress.IPv4Interface | None:
    for a in ct_addresses(pid, st.netdev):
        why = acceptable(st, a)
        if why is None:
            return a
        raise ValueError(f"not publishing ports: the CT's address {why}")
    return None


def _detach(st: State, phase: str) -> None:
    """Run this script again for ``phase``, detached from PVE's task (its own session)."""
    import subprocess

    script = os.path.realpath(sys.argv[0])
    subprocess.Popen(
        [sys.executable, str(script), str(st.vmid), phase],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _supervise(st: State, sdir: str) -> None:
    discard(os.path.join(sdir, STOP_REQUESTED))
    if st.restart != "no" or st.healthcheck is not None:  # pve_supervise.wanted
        _detach(st, SUPERVISE_PHASE)


def _post_start(st: State, sdir: str, log: _Log) -> None:
    if not st.ports:
        return
    import ipaddress

    if "/" in st.ipv4:
        _publish(st, sdir, ipaddress.IPv4Interface(st.ipv4), log)
        return
    pid = init_pid(st)
    if pid is None:
        raise RuntimeError("the CT is not running; ports not published")
    deadline = time.monotonic() + INLINE_WAIT
    while time.monotonic() < deadline:
        addr = _learn(st, pid)
        if addr is not None:
            _publish(st, sdir, addr, log)
            return
        time.sleep(0.2)
    _detach(st, WATCH_PHASE)
    log(f"no address on {st.netdev} yet; ports are published once DHCP gives one")


def _watch(st: State, sdir: str, log: _Log) -> None:
    pid = init_pid(st)
    deadline = time.monotonic() + WATCH_WAIT
    while pid is not None and time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or init_pid(st) != pid:
            return  # stopped (post-stop cleans up) or restarted (its own post-start)
        addr = _learn(st, pid)
        if addr is not None:
            _publish(st, sdir, addr, log)
            return
        time.sleep(0.5)
    if pid is not None:
        log(f"no address on {st.netdev} after {WATCH_WAIT:g} s; ports not published", err=True)
