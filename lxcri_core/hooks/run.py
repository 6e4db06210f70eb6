"""What lxcri's LXC hook does, per hook type, for a container lxcri manages.

- ``pre-start`` (host namespaces, before LXC mounts the rootfs): mount the
  overlay rootfs if it is not mounted (mount(2) through libc, no mount(8)),
  publish the container's ports.
- ``post-stop`` (after the container is gone, also when its init was
  killed): unpublish the ports, unmount the rootfs.

Each step is idempotent (a hook may run twice, or after a crash), and each
run is appended to ``hooks.log`` in the state directory: LXC drops a hook's
stderr. Imports stay light: this runs at every start and stop.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from lxcri_core import mountsys
from lxcri_core.fsutil import is_mountpoint
from lxcri_core.hooks.context import MARKER, HookContext


class HookLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, msg: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {msg}\n")


def _ports(doc: dict[str, Any]) -> list[Any]:
    from lxcri_core.spec.model import PortMapping

    # the record's keys are PortMapping's fields (the one class for -p)
    return [
        PortMapping(
            container_port=int(p["container_port"]),
            host_port=int(p["host_port"]),
            protocol="udp" if p.get("protocol") == "udp" else "tcp",
            host_ip=p.get("host_ip") or "",
        )
        for p in doc["spec"].get("ports") or []
    ]


def _mount(doc: dict[str, Any], log: HookLog) -> None:
    mount = doc.get("mount") or []
    if not mount or is_mountpoint(doc["rootfs"]):
        return
    Path(doc["rootfs"]).mkdir(parents=True, exist_ok=True)
    mountsys.replay(mount)  # no mount(8) but for records of an earlier lxcri
    log(f"pre-start: mounted rootfs at {doc['rootfs']}")


def pre_start(ctx: HookContext, doc: dict[str, Any], log: HookLog) -> None:
    _mount(doc, log)
    _mount_volumes(Path(ctx.state_dir), log)
    ports = _ports(doc)
    if ports and doc.get("ipv4"):
        from ipaddress import IPv4Address, IPv6Address

        from lxcri_core.network.ports import publish

        v6 = IPv6Address(doc["ipv6"]) if doc.get("ipv6") else None
        publish(
            doc["id"],
            ports,
            IPv4Address(doc["ipv4"]),
            v6,
            check_conflicts=True,
            name_of=lambda cid: _name_of(Path(ctx.state_dir).parent, cid),
        )
        log(f"pre-start: published {len(ports)} port(s) to {doc['ipv4']}")


def _name_of(containers: Path, cid: str) -> str:
    """The name of the container with id ``cid`` among ``containers``' records (for
    messages: people know containers by name); the id when none has it."""
    for marker in containers.glob(f"*/{MARKER}"):
        try:
            if json.loads(marker.read_text()).get("id") == cid:
                return marker.parent.name
        except (OSError, ValueError, AttributeError):
            continue
    return cid


def _mount_volumes(sdir: Path, log: HookLog) -> None:
    """An unprivileged container's volumes, at the mount points in its state dir that
    LXC mounts them from (the volumes dir itself is private: containers.private)."""
    if not (sdir / "volumes.json").exists():
        return  # a privileged container, or none: no import
    from lxcri_core.containers.private import volume_mounts

    for src, dst in volume_mounts(sdir):
        if not is_mountpoint(dst):
            dst.mkdir(mode=0o700, exist_ok=True)
            subprocess.run(
                ["mount", "--bind", str(src), str(dst)], check=True, capture_output=True, text=True
            )
            log(f"pre-start: mounted volume {src.name}")


def _unpublish(doc: dict[str, Any], log: HookLog) -> None:
    if doc["spec"].get("ports"):
        from lxcri_core.network.ports import unpublish

        unpublish(doc["id"])
        log("post-stop: unpublished ports")


def _unmount(doc: dict[str, Any], log: HookLog) -> None:
    if doc.get("mount") and is_mountpoint(doc["rootfs"]):
        mountsys.umount(doc["rootfs"])
        log(f"post-stop: unmounted {doc['rootfs']}")


def post_stop(ctx: HookContext, doc: dict[str, Any], log: HookLog) -> None:
    """Every clean-up step runs even when an earlier one fails; the first error is raised."""
    first: BaseException | None = None

    def _unmount_volumes(doc: dict[str, Any], log: HookLog) -> None:
        if not (Path(ctx.state_dir) / "volumes").is_dir():
            return
        from lxcri_core.containers.private import unmount_volumes

        unmount_volumes(Path(ctx.state_dir))

    for step in (_unpublish, _unmount, _unmount_volumes):
        try:
            step(doc, log)
        except Exception as e:
            log(f"post-stop: {step.__name__.lstrip('_')} failed: {type(e).__name__}: {e}")
            first = first or e
    if first is not None:
        raise first


ACTIONS = {"pre-start": pre_start, "post-stop": post_stop}


def route_core_logs(sink: HookLog) -> None:
    """Send the core's log lines to ``hooks.log``: LXC drops a hook's stderr."""
    from lxcri_core.log import route_to

    def emit(level: str, name: str, event: str, fields: dict[str, Any]) -> None:
        sink(" ".join([f"{level}: {name}: {event}", *(f"{k}={v}" for k, v in fields.items())]))

    route_to(emit)


def run(ctx: HookContext) -> int:
    sdir = Path(ctx.state_dir)
    log = HookLog(sdir / "hooks.log")
    action = ACTIONS.get(ctx.hook_type)
    if action is None:
        return 0
    route_core_logs(log)
    try:
        doc = json.loads((sdir / MARKER).read_text())
        action(ctx, doc, log)
    except subprocess.CalledProcessError as e:
        log(f"{ctx.hook_type}: FAILED: {' '.join(e.cmd)}: {(e.stderr or '').strip()}")
        return 1
    except Exception as e:  # LXC shows nothing of a hook's failure: log it
        log(f"{ctx.hook_type}: FAILED: {type(e).__name__}: {e}")
        return 1
    return 0
