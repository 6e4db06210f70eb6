"""A recorded data source: what the snapshot tests and the docs' screenshots show.

Fixed containers, images and reports with a fixed clock, so a picture never
depends on the time, ids or this host. It also holds hostile text (escape
sequences, markup) where a container controls it, to show it stays text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from lxcri_tui.source import Node, PullReport, Section, StorageView, Usage

from lxcri_core.backend import ContainerStatus, ExecCommand
from lxcri_core.images import ImageDetails, ImageSummary, LayerInfo
from lxcri_core.spec.model import PortMapping

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
D1 = "sha256:" + "1a" * 32
D2 = "sha256:" + "2b" * 32
D3 = "sha256:" + "3c" * 32


def _ct(vmid: int, name: str, status: str, **kw: object) -> ContainerStatus:
    return ContainerStatus(vmid=vmid, name=name, id=str(vmid), status=status, **kw)  # type: ignore[arg-type]


CONTAINERS = [
    _ct(101, "web", "running", image="docker.io/library/nginx:1.27", image_digest=D1,
        health="healthy", ipv4="10.88.0.11", started_at="2026-12-01T09:14:03Z",
        ports=(PortMapping(host_ip="", host_port=8080, container_port=80, protocol="tcp"),),
        labels={"io.lxcri.stack": "shop", "io.lxcri.stack.service": "web"}, pid=4242),
    _ct(102, "db", "running", image="docker.io/library/postgres:17", image_digest=D2,
        health="starting", ipv4="10.88.0.12", started_at="2026-11-28T22:01:00Z",
        labels={"io.lxcri.stack": "shop", "io.lxcri.stack.service": "db"}, pid=4300),
    _ct(103, "cache", "exited", image="docker.io/library/redis:7", image_digest=D3,
        exit_code=137, restarts=3, finished_at="2026-12-01T11:00:00Z"),
    _ct(104, "batch", "created", image="registry.example/batch:2", lock="create"),
    _ct(105, "[b]evil[/b]\x1b[2J", "running", image="docker.io/library/nginx:1.27",
        image_digest=D1, ipv4="10.88.0.15", started_at="2026-12-01T11:59:30Z", pid=4400),
]  # fmt: skip

USAGE = {
    101: Usage(12.5, 48_300_000, 512_000_000),
    102: Usage(3.2, 210_000_000, 1_024_000_000),
    105: Usage(0.0, 3_100_000, None),
}

IMAGES = [
    ImageSummary("docker.io/library/nginx:1.27", "docker.io/library/nginx", "1.27", D1,
                 72_400_000, "linux/amd64", "2026-11-20T08:00:00Z"),
    ImageSummary("docker.io/library/postgres:17", "docker.io/library/postgres", "17", D2,
                 158_000_000, "linux/amd64", "2026-11-02T10:30:00Z"),
    ImageSummary("docker.io/library/redis:7", "docker.io/library/redis", "7", D3,
                 45_000_000, "linux/amd64", "2026-10-15T17:45:00Z"),
]  # fmt: skip

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _details(img: ImageSummary) -> ImageDetails:
    layers = tuple(
        LayerInfo("sha256:" + f"{img.digest[7:9]}{i:02d}" * 16, (i + 1) * 9_000_000, LAYER, "")
        for i in range(3)
    )
    return ImageDetails(img.name, (img.name,), img.digest, "", 900, img.size, img.platform,
                        img.created, "", "", 0, {}, layers, "")  # fmt: skip


STORAGE = StorageView(
    tree=(
        Node("pool tank  ONLINE  size 20.0 GB  free 14.2 GB  cap 29%", (
            Node("tank/lxcri/layers/3f9a0c  used 80.1 MB  refer 80.1 MB  images 2", (
                Node("tank/lxcri/layers/77b1e2  used 12.0 MB  refer 92.0 MB  images 1", (
                    Node("tank/ct/101  container 101  used 4.1 MB  refer 96.0 MB  ratio 1.80x",
                         (Node("@before-upgrade"),)),
                    Node("tank/ct/105  container 105  used 1.0 MB  refer 93.0 MB  ratio 1.75x"),
                )),
            )),
            Node("tank/lxcri/layers/c0ffee  used 150.2 MB  refer 150.2 MB  images 0"),
        )),
    ),
    sections=(
        Section("Overlay and dir layers", ("BACKEND", "KIND", "KEY", "SIZE", "CONTAINERS",
                                           "IMAGES"),
                (("overlay", "layer", "5d41402abc4b2a76", "31.2 MB", "102", "1"),
                 ("overlay", "layer", "7d793037a0760186", "8.4 MB", "102, 103", "2"))),
    ),
    prune="a prune would free 150.2 MB (1 layer datasets)",
)  # fmt: skip

NETWORK = [
    Section("Linux bridges", ("BRIDGE", "STATE", "MTU", "ADDRESSES", "PORTS"),
            (("lxcri0", "UP", "1500", "10.88.0.1/16", "veth101i0 veth102i0 veth105i0"),)),
    Section("Open vSwitch bridges", ("OVS BRIDGE", "DATAPATH", "PORT", "VLAN TAG", "TRUNKS"),
            (("ovsbr0", "netdev", "veth103i0", "20", ""), ("ovsbr0", "netdev", "uplink", "",
                                                          "10,20"))),
    Section("Container veths", ("VETH", "BRIDGE", "VLAN TAG", "CONTAINER", "IFNAME", "STATE"),
            (("veth101i0", "lxcri0", "", "web", "eth0", "UP"),
             ("veth102i0", "lxcri0", "", "db", "eth0", "UP"),
             ("veth105i0", "lxcri0", "", "105", "[red]eth0\x1b]0;pwn\x07", "UP"))),
    Section("Container addresses", ("CONTAINER", "VMID", "IFNAME", "ADDRESSES", "ROUTES"),
            (("web", "101", "eth0", "10.88.0.11/16", "default via 10.88.0.1"),
             ("db", "102", "eth0", "10.88.0.12/16", "default via 10.88.0.1"))),
    Section("Published ports", ("CONTAINER", "HOST", "CONTAINER PORT", "TO", "SHADOWS"),
            (("web", "*:8080/tcp", "80", "10.88.0.11", ""),)),
]  # fmt: skip

HOST = Section("Host", ("FACT", "VALUE", "DETAIL"), (
    ("LSMs", "lockdown,capability,landlock,yama,apparmor", "from /sys/kernel/security/lsm"),
    ("AppArmor", "enabled", "113 profiles"),
    ("SELinux", "unavailable", ""),
    ("cgroup", "v2", "cpu,memory,pids,io"),
    ("seccomp", "supported", "kill_process kill_thread trap errno user_notif trace log allow"),
    ("user namespaces", "available", "max 63541"),
))  # fmt: skip


def _security(vmid: int) -> Section:
    return Section(f"Container web ({vmid})", ("ITEM", "VALUE", "DETAIL"), (
        ("status", "running", "init pid 4242"),
        ("unprivileged", "yes", "u 0 100000 65536; g 0 100000 65536"),
        ("root on the host", "uid 100000", ""),
        ("capabilities", "chown,dac_override,fowner,kill,net_bind_service,setgid,setuid", ""),
        ("no_new_privs", "no", ""),
        ("seccomp", "default", "kernel: 2"),
        ("AppArmor", "lxc-container-default-cgns", "lxc-container-default-cgns (enforce)"),
        ("nesting", "no", "nesting=0"),
    ))  # fmt: skip


LOG = (
    b"".join(
        f"2026-12-01T11:{m:02d}:00Z GET /index.html 200 {m * 17} bytes\n".encode()
        for m in range(40)
    )
    + b"\x1b]0;owned\x07\x1b[31mred?\x1b[0m [bold]not markup[/bold]\n"
)


class RecordedSource:
    backend_name = "recorded"

    def __init__(self, containers: list[ContainerStatus] | None = None) -> None:
        self.cts = list(CONTAINERS if containers is None else containers)
        self.calls: list[tuple[str, object]] = []

    def now(self) -> datetime:
        return NOW

    def containers(self) -> list[ContainerStatus]:
        return list(self.cts)

    def usage(self, cts: list[ContainerStatus]) -> dict[int, Usage]:
        return {c.vmid: USAGE[c.vmid] for c in cts if c.vmid in USAGE}

    def config(self, vmid: int) -> dict[str, object]:
        return {"hostname": f"ct{vmid}", "memory": 512, "unprivileged": 1}

    def _call(self, what: str, arg: object) -> None:
        self.calls.append((what, arg))

    def start(self, vmid: int) -> None:
        self._call("start", vmid)

    def stop(self, vmid: int) -> None:
        self._call("stop", vmid)

    def restart(self, vmid: int) -> None:
        self._call("restart", vmid)

    def destroy(self, vmid: int) -> None:
        self._call("destroy", vmid)

    def shell(self, vmid: int) -> ExecCommand:
        return ExecCommand(["/bin/true"], {})

    def logs(self, vmid: int, *, follow: bool, tail: int | None) -> Iterator[bytes]:
        yield LOG

    def images(self) -> list[ImageSummary]:
        return list(IMAGES)

    def image(self, name: str) -> ImageDetails:
        return _details(next(i for i in IMAGES if i.name == name))

    def pull(self, ref: str, report: PullReport) -> str:
        for key in (D1, D2):
            report(key, 0, 1000)
            report(key, 1000, 1000)
        return ref

    def remove_image(self, name: str) -> None:
        self._call("remove_image", name)

    def prune(self) -> str:
        return "pruned 0 items, freed 0 B"

    def storage(self) -> StorageView:
        return STORAGE

    def network(self) -> list[Section]:
        return list(NETWORK)

    def host_security(self) -> Section:
        return HOST

    def security(self, vmid: int) -> Section:
        return _security(vmid)

    def stack_up(self, path: str, say: Callable[[str], None]) -> list[str]:
        self._call("stack_up", path)
        return []

    def stack_down(self, name: str) -> list[str]:
        self._call("stack_down", name)
        return []
