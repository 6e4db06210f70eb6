"""What would only fail at start, refused at create (ports, devices, ulimits)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from lxcri_core.log import get_logger
from lxcri_core.spec.model import ContainerSpec, PortMapping

log = get_logger(__name__)


def _checked(spec: ContainerSpec) -> ContainerSpec:
    """What would only fail at start, refused at create; ``-p 80`` gets a free host port."""
    import socket

    from lxcri_core.errors import SpecError

    if spec.stop_timeout < 0:
        raise SpecError(f"--stop-timeout {spec.stop_timeout}: give 0 or more seconds")
    if spec.ports and spec.network.mode == "none":
        raise SpecError("-p needs a network: a container with --network none has no ports")
    if any(m.target == "/" for m in spec.mounts):
        raise SpecError("-v ...:/ would hide the whole root filesystem; mount below it")
    sec = spec.security.seccomp
    if sec not in ("default", "unconfined") and not os.path.isfile(sec):
        raise SpecError(f"--security-opt seccomp={sec}: no such profile file")
    ports: list[PortMapping] = []
    seen: set[tuple[str, str, int]] = set()
    for p in spec.ports:
        kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
        fam = socket.AF_INET6 if ":" in p.host_ip else socket.AF_INET
        with socket.socket(fam, kind) as probe:
            try:  # a host address that is not this host's would hijack outgoing traffic
                probe.bind((p.host_ip, 0))
            except OSError:
                raise SpecError(
                    f"-p {p.host_ip}:{p.host_port}:{p.container_port}: {p.host_ip} is not an "
                    "address of this host"
                ) from None
        # -p 80: any free port, as docker does; else one no host process serves
        mine = [q.host_port for q in ports if q.protocol == p.protocol]  # never twice
        from lxcri_core.network import listeners  # with ports only (~5 ms)

        port = listeners.host_port_for(p.protocol, p.host_ip, p.host_port, mine)
        p = dataclasses.replace(p, host_port=port)
        key = (p.protocol, p.host_ip, p.host_port)
        if key in seen:
            raise SpecError(f"host port {p.host_port}/{p.protocol} is published twice")
        seen.add(key)
        ports.append(p)
    for u in spec.ulimits:
        if u.name == "nofile":
            _check_nofile(u.soft, u.hard)
    devices = tuple(_host_device(d) for d in spec.devices)
    from lxcri_core.security.advice import bind_mount_warnings, security_warnings

    for warning in (*security_warnings(spec), *bind_mount_warnings(spec)):
        log.warning(warning)
    return dataclasses.replace(spec, ports=tuple(ports), devices=devices)


def _check_nofile(soft: int, hard: int) -> None:
    """The kernel refuses more open files than fs.nr_open; say so now, not at start."""
    from lxcri_core.errors import SpecError

    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return
    if hard < 0 or hard > nr_open:
        raise SpecError(
            f"--ulimit nofile={soft}:{hard}: this host allows at most {nr_open} open files "
            "(fs.nr_open)"
        )


def _host_device(d: Any) -> Any:
    """A ``--device`` with its host node's type and numbers; refuses anything but a device
    node reached without a symbolic link (``/dev/disk/by-id/...`` links: give the target)."""
    import stat

    from lxcri_core.errors import SpecError

    if os.path.realpath(d.path) != d.path:
        raise SpecError(
            f"--device {d.path}: a symbolic link is on the way; give the device it points to "
            f"({os.path.realpath(d.path)})"
        )
    try:
        st = os.lstat(d.path)
    except OSError as e:
        raise SpecError(f"--device {d.path}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise SpecError(f"--device {d.path}: not a device node")
    return dataclasses.replace(d, kind=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev))
