"""/etc/resolv.conf, /etc/hosts and /etc/hostname for a container, written as docker writes them.

docker bind-mounts these three files from the container's state directory;
lxcri does the same (``lxc_config`` mounts them), so the image's own copies
stay untouched and the content is regenerated on every start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from lxcri_core.errors import SpecError
from lxcri_core.spec.model import NetworkSpec

#: docker's fallback when the host has no usable nameserver.
DEFAULT_DNS_V4 = ("8.8.8.8", "8.8.4.4")
DEFAULT_DNS_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")

#: The lines docker puts at the top of every container's /etc/hosts.
_HOSTS_HEAD = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)


def hosts_file(
    hostname: str,
    ip: str = "",
    *,
    domainname: str = "",
    extra_hosts: Sequence[tuple[str, str]] = (),
) -> str:
    """The container's /etc/hosts: docker's defaults, ``--add-host`` entries, then its own name.

    ``ip`` is the container's address (no prefix); without one (DHCP, or no
    network) the own-name line is omitted, as docker does with
    ``--network none``.
    """
    for field in (hostname, ip, domainname, *(f for pair in extra_hosts for f in pair)):
        _check_field(field, "/etc/hosts")
    lines = [f"{addr}\t{names}" for addr, names in _HOSTS_HEAD]
    lines += [f"{addr}\t{name}" for name, addr in extra_hosts]
    if ip:
        names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
        lines.append(f"{ip}\t{names}")
    return "\n".join(lines) + "\n"


def _check_field(text: str, where: str) -> None:
    """Refuse what would end a line, add a field or start a comment in ``where``.

    The options are validated where they are parsed; this keeps a record
    written by anything else (or a parser's slip, such as an IPv6 zone, in
    which Python's ipaddress takes any text) from adding lines.
    """
    if any(c.isspace() or c in "#;" or not c.isprintable() for c in text):
        raise SpecError(
            f"{text!r} cannot be written to {where}: no spaces, '#', ';' or line breaks"
        )


def hostname_file(hostname: str) -> str:
    return hostname + "\n"


def _is_local(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(
    host_resolv_conf: str,
    *,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
    ipv6: bool = False,
) -> str:
    """The container's /etc/resolv.conf from the host's, following docker's rules.

    Without ``--dns*`` options the host file is copied with loopback
    nameservers removed (a 127.0.0.53 stub resolver is unreachable from the
    container's network namespace) and, when none is left, docker's public
    defaults added. ``--dns``, ``--dns-search`` and ``--dns-option`` replace
    the host's ``nameserver``, ``search``/``domain`` and ``options`` lines
    respectively; other lines are kept. IPv6 nameservers are dropped unless
    ``ipv6``.
    """
    for field in (*dns, *dns_search, *dns_options):
        _check_field(field, "/etc/resolv.conf")
    kept: list[str] = []
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in host_resolv_conf.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key == "nameserver" and len(words) > 1:
            addr = words[1]
            if _is_local(addr) or (":" in addr and not ipv6):
                continue
            nameservers.append(addr)
        elif key in ("search", "domain"):
            search = words[1:]
        elif key == "options":
            options += words[1:]
        else:
            kept.append(line)
    if dns:
        nameservers = list(dns)
    if dns_search:
        # "." means "no search domains" in docker
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    if not nameservers:
        nameservers = list(DEFAULT_DNS_V4) + (list(DEFAULT_DNS_V6) if ipv6 else [])
    out = [line for line in kept if line.strip()]
    if search:
        out.append("search " + " ".join(search))
    out += [f"nameserver {ns}" for ns in nameservers]
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def etc_files(
    net: NetworkSpec, hostname: str, domainname: str, host_resolv_conf: str
) -> dict[str, str]:
    """The three files, keyed by their name in the container's state directory."""
    ipv6 = bool(net.ip6) and net.ip6 != "manual"
    return {
        "hosts": hosts_file(
            hostname, net.static_ipv4, domainname=domainname, extra_hosts=net.extra_hosts
        ),
        "hostname": hostname_file(hostname),
        "resolv.conf": resolv_conf(
            host_resolv_conf,
            dns=net.dns,
            dns_search=net.dns_search,
            dns_options=net.dns_options,
            ipv6=ipv6,
        ),
    }
