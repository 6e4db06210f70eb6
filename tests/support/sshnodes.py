"""Cluster "nodes" for tests: a network namespace each, with its own sshd.

Each node is a namespace ``lxs<tag><n>`` joined to the host by a veth pair on
a random free /30 in 10.203.0.0/16; its sshd (openssh-server, started here
with ``-D``, stopped by PID) listens on the namespace's address with a host
key generated for the test and accepts root with one generated client key.
The nodes share the host's filesystem and its one zfs-fuse daemon, so each
one's "pool" is a separate zfs-fuse pool: the real ssh transport runs, and
the pools stay apart. No systemd is needed.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lxcri_core.cluster.transport import SshNode

SSHD = Path("/usr/sbin/sshd")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


@dataclass
class Lab:
    """Namespaces, veths and sshd processes of one test; ``close`` removes them."""

    dir: Path
    tag: str
    key: Path
    known_hosts: Path
    procs: list[subprocess.Popen[bytes]]
    namespaces: list[str]
    links: list[str]

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)


def _used_nets() -> set[int]:
    text = sh("ip", "-4", "-o", "addr").stdout
    return {int(w.split(".")[2]) for w in text.split() if w.startswith("10.203.")}


def _wait_port(ns: str, addr: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    probe = f"import socket; socket.create_connection(({addr!r}, {port}), timeout=1).close()"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}")
        if (
            sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", probe, check=False).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"sshd on {addr}:{port} did not come up")


def new_lab(tmp: Path) -> Lab:
    tag = secrets.token_hex(2)
    key = tmp / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    tmp.joinpath("authorized_keys").write_text(key.with_suffix(".pub").read_text())
    tmp.joinpath("authorized_keys").chmod(0o600)
    return Lab(tmp, tag, key, tmp / "known_hosts", [], [], [])


def add_node(lab: Lab, name: str) -> SshNode:
    """One more node: namespace, veth, sshd; an ``SshNode`` that reaches it."""
    n = len(lab.namespaces)
    ns, host_if, ns_if = f"lxs{lab.tag}{n}", f"lxs{lab.tag}{n}h", f"lxs{lab.tag}{n}n"
    net = random.choice(sorted(set(range(1, 255)) - _used_nets()))
    host_addr, addr = f"10.203.{net}.1", f"10.203.{net}.2"
    sh("ip", "netns", "add", ns)
    lab.namespaces.append(ns)
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
    lab.links.append(host_if)
    sh("ip", "link", "set", ns_if, "netns", ns)
    sh("ip", "addr", "add", f"{host_addr}/30", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    sh("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", ns_if)
    sh("ip", "-n", ns, "link", "set", ns_if, "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    d = lab.dir / name
    d.mkdir()
    hostkey = d / "ssh_host_ed25519_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey))
    kind, pub = hostkey.with_suffix(".pub").read_text().split()[:2]
    with lab.known_hosts.open("a") as f:
        f.write(f"{name} {kind} {pub}\n")  # the client names the node (HostKeyAlias)
    port = 22
    conf = d / "sshd_config"
    conf.write_text(
        f"ListenAddress {addr}:{port}\nHostKey {hostkey}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {lab.dir / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", str(SSHD), "-D", "-e", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("wb"),
    )
    # nsenter execs sshd (its PID is sshd's own) and enters only the network namespace:
    # zfs-fuse mounts must land in the host's mount namespace (`ip netns exec` makes one)
    lab.procs.append(proc)
    _wait_port(ns, addr, port, proc)
    return SshNode(name, addr, port=port, identity=lab.key, known_hosts=lab.known_hosts)


@pytest.fixture
def ssh_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab to ``add_node`` to; everything it made is removed after the test."""
    if not SSHD.exists():
        pytest.fail("openssh-server is not installed; `make deps` installs it")
    if shutil.which("ssh") is None:
        pytest.fail("openssh-client is not installed; `make deps` installs it")
    d = tmp_path / "ssh"
    d.mkdir()
    lab = new_lab(d)
    try:
        yield lab
    finally:
        lab.close()
