"""``build_spec``: image config + user options -> ContainerSpec, with docker's rules.

Entrypoint and command (docker's table):

=====================  ==================  ========================================
``--entrypoint``       trailing args        process argv
=====================  ==================  ========================================
not given              none                 image ENTRYPOINT + image CMD
not given              ``a b``              image ENTRYPOINT + ``a b``
``X``                  none                 ``X`` (the image CMD is reset)
``X``                  ``a b``              ``X a b``
``""``                 none                 image CMD is reset too: error, no command
``""``                 ``a b``              ``a b``
=====================  ==================  ========================================

Environment, in order (later wins, position of the first occurrence is
kept): ``PATH`` (docker's default), ``HOSTNAME``, ``TERM=xterm`` with a tty,
the image's Env, ``--env-file`` files in order, ``-e`` flags in order, then
``HOME`` from /etc/passwd unless already set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxcri_core.errors import SpecError
from lxcri_core.spec import options as o
from lxcri_core.spec.model import (
    DEFAULT_PATH,
    DOCKER_DEFAULT_CAPS,
    ContainerSpec,
    Device,
    Healthcheck,
    IdMap,
    Mount,
    NetworkSpec,
    PortMapping,
    Resources,
    RestartPolicy,
    SecuritySpec,
    TmpfsMount,
    Ulimit,
    User,
)
from lxcri_core.spec.users import read_rootfs_file, resolve_user

_NS = 1e-9


def _image_section(image_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept the whole image config blob or just its ``config`` object."""
    inner = image_config.get("config")
    # the blob's own keys are lower case; the inner config's are Capitalised
    if isinstance(inner, Mapping):
        return inner
    return image_config


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # some old images store a string; docker wraps it in sh -c
        return ("/bin/sh", "-c", value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"image config field {what} must be a list of strings")
    return tuple(value)


def resolve_command(
    image_entrypoint: tuple[str, ...],
    image_cmd: tuple[str, ...],
    entrypoint: str | None,
    args: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """docker's entrypoint/cmd override rules; returns (entrypoint, cmd)."""
    if entrypoint is not None:
        ep: tuple[str, ...] = (entrypoint,) if entrypoint else ()
        return ep, args
    return image_entrypoint, args if args else image_cmd


def merge_env(*layers: Iterable[str]) -> tuple[str, ...]:
    """Merge ``KEY=VALUE`` lists: a later value replaces an earlier one in place."""
    order: dict[str, str] = {}
    for layer in layers:
        for item in layer:
            key, _, value = item.partition("=")
            order[key] = value
    return tuple(f"{k}={v}" for k, v in order.items())


def _healthcheck(img: Mapping[str, Any], opts: o.RunOptions) -> Healthcheck | None:
    if opts.no_healthcheck:
        return None
    raw = img.get("Healthcheck") or {}
    test: tuple[str, ...] = tuple(raw.get("Test") or ())
    interval = (raw.get("Interval") or 0) * _NS or 30.0
    timeout = (raw.get("Timeout") or 0) * _NS or 30.0
    start = (raw.get("StartPeriod") or 0) * _NS
    retries = int(raw.get("Retries") or 0) or 3
    if opts.health_cmd is not None:
        test = ("CMD-SHELL", opts.health_cmd)
    if opts.health_interval is not None:
        interval = o.parse_duration(opts.health_interval, "--health-interval")
    if opts.health_timeout is not None:
        timeout = o.parse_duration(opts.health_timeout, "--health-timeout")
    if opts.health_start_period is not None:
        start = o.parse_duration(opts.health_start_period, "--health-start-period")
    if opts.health_retries is not None:
        retries = o.parse_int(opts.health_retries, "--health-retries", 1, 1 << 20)
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise SpecError(f"image HEALTHCHECK test {list(test)!r} is not CMD or CMD-SHELL")
    return Healthcheck(test, float(interval), float(timeout), float(start), retries)


#: Files lxcri bind-mounts over the image's (see etc_files): no tmpfs may hide their targets.
_ETC_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _mounts(
    img: Mapping[str, Any], opts: o.RunOptions
) -> tuple[tuple[Mount, ...], tuple[TmpfsMount, ...]]:
    mounts = [o.parse_volume(v) for v in opts.volumes]
    tmpfs = [o.parse_tmpfs(t) for t in opts.tmpfs]
    for value in opts.mounts:
        m = o.parse_mount(value)
        if isinstance(m, TmpfsMount):
            tmpfs.append(m)
            continue
        # unlike -v, docker's --mount does not create a missing bind source
        if m.kind == "bind" and not os.path.exists(m.source):
            raise SpecError(f"--mount {value}: bind source path does not exist: {m.source}")
        mounts.append(m)
    seen: set[str] = set()
    for m in mounts:
        if m.target in seen:
            raise SpecError(f"-v: two volumes are mounted at {m.target}; keep one")
        seen.add(m.target)
    for t in tmpfs:
        if any(_under(t.target, top) for top in ("/proc", "/sys", "/.lxcri")) or t.target in (
            "/",
            "/dev",
        ):
            raise SpecError(f"--tmpfs {t.target}: lxcri mounts that path itself; choose another")
        # a mount below a tmpfs (or a tmpfs below a volume) would need its target made in
        # a filesystem that does not exist yet when lxcri prepares the rootfs
        others = [*seen, *(x.target for x in tmpfs if x is not t), *_ETC_FILES]
        for other in others:
            if _under(other, t.target) or _under(t.target, other):
                raise SpecError(f"--tmpfs {t.target} and a mount at {other} overlap; keep one")
    tmpfs_targets = {t.target for t in tmpfs}
    image_volumes = img.get("Volumes") or {}
    if not isinstance(image_volumes, Mapping):
        raise SpecError("image config field Volumes must be an object")
    for path in sorted(image_volumes):
        # an image is untrusted input: its paths get the same check as -v
        target = o.check_ctr_path("image VOLUME", str(path), "/" + str(path).lstrip("/"))
        if target == "/":
            raise SpecError("image VOLUME / is not allowed: it would hide the whole rootfs")
        if any(_under(target, t) or _under(t, target) for t in tmpfs_targets):
            continue  # the user's tmpfs takes that place
        if target not in seen:
            mounts.append(Mount(target, "", "anonymous", False))
            seen.add(target)
    return tuple(mounts), tuple(tmpfs)


def _devices(opts: o.RunOptions) -> tuple[Device, ...]:
    devices = [o.parse_device(d) for d in opts.devices]
    targets = [d.container_path for d in devices]
    for t in targets:
        if targets.count(t) > 1:
            raise SpecError(f"--device: two devices are mounted at {t}; keep one")
    return tuple(devices)


def _ulimits(opts: o.RunOptions) -> tuple[Ulimit, ...]:
    by_name = {u.name: u for u in (o.parse_ulimit(v) for v in opts.ulimits)}  # the last wins
    return tuple(by_name[n] for n in sorted(by_name))


def _publish_all(img: Mapping[str, Any], ports: list[PortMapping]) -> list[PortMapping]:
    """``-P``: each EXPOSEd port not published by ``-p`` yet, to any free host port."""
    exposed = img.get("ExposedPorts") or {}
    if not isinstance(exposed, Mapping):
        raise SpecError("image config field ExposedPorts must be an object")
    wanted: list[tuple[int, str]] = []
    for key in sorted(exposed):
        wanted += o.parse_exposed(str(key))
    if len(wanted) > o.MAX_PUBLISH_ALL:
        raise SpecError(
            f"-P: the image exposes {len(wanted)} ports (more than {o.MAX_PUBLISH_ALL}); "
            "publish the ones you need with -p"
        )
    have: set[tuple[int, str]] = {(p.container_port, p.protocol) for p in ports}
    out = []
    for port, proto in wanted:
        if (port, proto) not in have:
            have.add((port, proto))
            out.append(PortMapping(port, 0, "udp" if proto == "udp" else "tcp"))
    return out


def _trunks(text: str) -> tuple[int, ...]:
    from lxcri_core.errors import NetworkError
    from lxcri_core.network.ovs import parse_trunks  # checked VLAN ids

    try:
        return parse_trunks(text)
    except NetworkError as e:
        raise SpecError(str(e)) from None


def _rate(text: str) -> float:
    """pct's ``rate=`` in MB/s (0..10^9, at most 3 decimals, not 0)."""
    import re

    if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,3})?", text) or not 0 < float(text) <= 1e9:
        raise SpecError(f"rate={text}: give MB/s, a number greater than 0 such as 12.5")
    return float(text)


def _network(opts: o.RunOptions) -> NetworkSpec:
    if opts.network not in ("bridge", "none"):
        raise SpecError(f"invalid --network value {opts.network!r}: use bridge or none")
    gw = o.parse_gateway(opts.gateway) if opts.gateway else ""
    ip = o.parse_ipv4_config(opts.ip) if opts.ip else "dhcp"
    if gw and "/" in ip:
        import ipaddress

        if ipaddress.IPv4Address(gw) not in ipaddress.IPv4Interface(ip).network:
            raise SpecError(f"--gateway {gw} is not in the network of --ip {ip}")
    return NetworkSpec(
        mode="none" if opts.network == "none" else "bridge",
        bridge=o.parse_bridge(opts.bridge) if opts.bridge else "vmbr0",
        ip=ip,
        gateway=gw,
        ip6=o.parse_ipv6_config(opts.ip6) if opts.ip6 else "",
        gateway6=o.parse_gateway(opts.gateway6, "--gateway6", 6) if opts.gateway6 else "",
        mtu=o.parse_int(opts.mtu, "--mtu", 576, 65535) if opts.mtu else None,
        vlan=o.parse_int(opts.vlan, "--vlan", 1, 4094) if opts.vlan else None,
        trunks=_trunks(opts.trunks) if opts.trunks else (),
        rate=_rate(opts.rate) if opts.rate else None,
        firewall=opts.firewall,
        hwaddr=o.parse_mac(opts.mac_address) if opts.mac_address else "",
        dns=tuple(o.parse_gateway(d, "--dns", 6 if ":" in d else 4) for d in opts.dns),
        dns_search=tuple(opts.dns_search),
        dns_options=tuple(opts.dns_options),
        extra_hosts=tuple(o.parse_add_host(h) for h in opts.add_hosts),
    )


def _security(opts: o.RunOptions) -> SecuritySpec:
    seccomp = "default"
    nnp = False
    apparmor = ""
    labels: list[str] = []
    for item in opts.security_opts:
        key, val = o.parse_security_opt(item)
        if key == "seccomp":
            seccomp = val
        elif key == "apparmor":
            apparmor = val
        elif key == "label":
            labels.append(val)
        else:
            nnp = val == "true"
    caps = o.apply_capabilities(DOCKER_DEFAULT_CAPS, opts.cap_add, opts.cap_drop)
    features = o.parse_features(opts.features)
    if opts.privileged:
        caps, seccomp = None, "unconfined"
    profile, unsupported = "", tuple[str, ...]()
    if seccomp not in ("default", "unconfined"):
        from lxcri_core.security.seccomp import load_profile

        tr = load_profile(seccomp, caps)
        profile, unsupported = tr.text, tr.unsupported
    from lxcri_core.security.lsm import selinux_context

    return SecuritySpec(
        privileged=opts.privileged,
        idmaps=_idmaps(opts),
        nesting=features.get("nesting", opts.nesting),
        keyctl=features.get("keyctl", opts.keyctl),
        fuse=features.get("fuse", opts.fuse),
        mknod=features.get("mknod", False),
        capabilities=caps,
        seccomp=seccomp,
        no_new_privileges=nnp,
        seccomp_profile=profile,
        seccomp_unsupported=unsupported,
        apparmor_profile=apparmor,
        selinux_context=selinux_context(labels),
    )


def _idmaps(opts: o.RunOptions) -> tuple[IdMap, ...]:
    if opts.privileged:
        if opts.idmap:
            raise SpecError("--idmap maps an unprivileged container's ids; drop --privileged")
        return ()
    if not opts.idmap:
        return SecuritySpec().idmaps
    m = IdMap.parse(opts.idmap)
    if m.host == 0:  # container root would be host root: that is --privileged, said plainly
        raise SpecError(f"--idmap {opts.idmap}: host ids from 0 include root; start above 0")
    return (IdMap(m.host, m.count, kind="u"), IdMap(m.host, m.count, kind="g"))


def _user(img: Mapping[str, Any], opts: o.RunOptions, rootfs: Path | None) -> User:
    spec = opts.user if opts.user is not None else str(img.get("User") or "")
    if not spec and not opts.group_add and rootfs is None:
        return User()
    name, group = o.parse_user(spec) if spec else ("", "")
    passwd = read_rootfs_file(rootfs, "etc/passwd") if rootfs else None
    groups = read_rootfs_file(rootfs, "etc/group") if rootfs else None
    return resolve_user(name, group, passwd, groups, opts.group_add)


def _default_hostname(opts: o.RunOptions) -> str:
    if opts.hostname:
        return o.parse_hostname(opts.hostname)
    # a container name may hold characters a hostname cannot; keep the valid part
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in opts.name).strip("-")
    return cleaned[:63].strip("-") or "lxcri"


#: Label keys only lxcri and the user set (``--label``, ``--auto-update``, a stack file),
#: never an image: they opt a container in to auto-update (``lxcri.auto-update``) and
#: make it a stack's (``io.lxcri.stack``, which ``down`` removes).
RESERVED_LABELS = ("lxcri.", "io.lxcri.")


def user_env(opts: o.RunOptions) -> list[str]:
    """The environment the user gave (``--env-file``s, then ``-e``), resolved now:
    ``NAME`` alone takes the host's value, or is dropped when unset there."""
    host_env = os.environ if opts.host_env is None else opts.host_env
    file_env: list[str] = []
    for path in opts.env_files:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise SpecError(f"--env-file {path}: {e.strerror}") from None
        file_env += o.parse_env_file(text, host_env, f"--env-file {path}")
    flag_env = [e for e in (o.parse_env(v, host_env) for v in opts.env) if e is not None]
    return file_env + flag_env


def frozen_options(opts: o.RunOptions) -> o.RunOptions:
    """``opts`` with the environment resolved (files read, host values taken): what a
    later rebuild of the spec (``lxcri upgrade``) needs, whatever the host's
    environment and files are then."""
    return dataclasses.replace(opts, env=tuple(user_env(opts)), env_files=(), host_env={})


def build_spec(
    image_config: Mapping[str, Any],
    opts: o.RunOptions,
    rootfs: Path | None = None,
    *,
    image: str = "",
) -> ContainerSpec:
    """Build the ContainerSpec for running ``image`` (its config blob) with ``opts``.

    ``rootfs`` is the unpacked image, used only to read /etc/passwd and
    /etc/group for ``--user``; without it only numeric users resolve.
    Raises ``SpecError`` for any invalid option, naming the flag and value.
    """
    img = _image_section(image_config)
    ep, cmd = resolve_command(
        _str_list(img.get("Entrypoint"), "Entrypoint"),
        _str_list(img.get("Cmd"), "Cmd"),
        opts.entrypoint,
        tuple(opts.args),
    )
    argv = ep + cmd
    if not argv or not argv[0]:
        raise SpecError(
            f"no command to run for {image or 'the image'}: it has no ENTRYPOINT or CMD; "
            "give a command after the image name"
        )
    hostname = _default_hostname(opts)
    user = _user(img, opts, rootfs)
    security = _security(opts)
    if user.additional_gids and not security.shim_sets_ids:
        if opts.group_add:
            raise SpecError(
                "--group-add needs the SETUID and SETGID capabilities (lxcri sets the groups "
                "inside the container); do not drop them, or use --security-opt no-new-privileges"
            )
        # the image's own group memberships cannot be set without them either
        user = dataclasses.replace(user, additional_gids=())

    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if opts.tty:
        base.append("TERM=xterm")
    env = merge_env(base, _str_list(img.get("Env"), "Env"), user_env(opts))
    if not any(e.startswith("HOME=") for e in env):
        env = (*env, f"HOME={user.home}")

    workdir = opts.workdir if opts.workdir is not None else str(img.get("WorkingDir") or "")
    if opts.workdir is not None and not workdir.startswith("/"):
        raise SpecError(f"invalid --workdir value {workdir!r}: must be an absolute path")
    workdir = workdir if workdir.startswith("/") else "/" + workdir if workdir else "/"

    labels = {
        str(k): str(v)
        for k, v in (img.get("Labels") or {}).items()
        if not str(k).startswith(RESERVED_LABELS)
    }
    labels.update(o.parse_label(v) for v in opts.labels)

    ports: list[PortMapping] = []
    for p in opts.publish:
        ports += o.parse_port(p)
    if opts.publish_all:
        ports += _publish_all(img, ports)
    mounts, tmpfs = _mounts(img, opts)
    stop_signal = o.parse_signal(
        opts.stop_signal if opts.stop_signal is not None else str(img.get("StopSignal") or "TERM")
    )
    resources = Resources(
        memory=o.parse_memory(opts.memory) if opts.memory else None,
        cores=o.parse_cores(opts.cores) if opts.cores else None,
        cpus=o.parse_cpus(opts.cpus) if opts.cpus else None,
        pids_limit=o.parse_pids_limit(opts.pids_limit) if opts.pids_limit else None,
        swap=o.parse_size(opts.swap, "--swap") if opts.swap else None,
    )
    return ContainerSpec(
        image=image,
        args=argv,
        entrypoint=ep,
        cmd=cmd,
        env=env,
        working_dir=workdir,
        user=user,
        hostname=hostname,
        domainname=o.parse_hostname(opts.domainname, "--domainname") if opts.domainname else "",
        mounts=mounts,
        ports=tuple(ports),
        exposed_ports=tuple(sorted(img.get("ExposedPorts") or {})),
        stop_signal=stop_signal,
        stop_timeout=opts.stop_timeout if opts.stop_timeout is not None else 10,
        labels=labels,
        resources=resources,
        restart=o.parse_restart(opts.restart) if opts.restart else RestartPolicy(),
        healthcheck=_healthcheck(img, opts),
        network=_network(opts),
        security=security,
        tty=opts.tty,
        tmpfs=tmpfs,
        read_only=opts.read_only,
        ulimits=_ulimits(opts),
        devices=_devices(opts),
        init=opts.init,
    )
