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
import os
import sys
import time

from lxcri_core import mountsys
from lxcri_core.fsutil import is_mountpoint
from lxcri_core.hooks.context import MARKER, HookContext
from lxcri_core.hooks.hooklog import HOOK_LOG_MAX, rotate_if_big

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)

# Imported at every start and stop: os.path rather than pathlib, subprocess and
# spec.model (dataclasses) only on the paths that need them.
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from lxcri_core.network.ports import RecordPort


class HookLog:
    def __init__(self, path: str | Path, max_bytes: int = HOOK_LOG_MAX) -> None:
        self.path = path
        rotate_if_big(str(path), max_bytes)  # once per hook run: one stat

    def __call__(self, msg: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {msg}\n")


def read_hook_log(state_dir: str | Path, tail: int | None = None) -> str:
    """A container's hook log, the rotated part first (``lxcri logs --hooks``);
    ``tail``: only the last lines. Control characters but newline and tab come out as
    ``?``: lines quote what an image declared (a volume path), and a terminal must not
    take an escape sequence in them for a command."""
    import re

    data = b""
    for name in ("hooks.log.1", "hooks.log"):
        try:
            with open(os.path.join(state_dir, name), "rb") as f:
                data += f.read()
        except FileNotFoundError:
            continue
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "?", data.decode(errors="replace"))
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:]) if tail else ""
    return text


def _ports(doc: dict[str, Any]) -> list[RecordPort]:
    """The record's ports (its keys are PortMapping's fields: the one class for -p),
    read without spec.model."""
    ports = doc["spec"].get("ports") or []
    if not ports:
        return []
    from lxcri_core.network.ports import RecordPort

    return [RecordPort.from_json(p) for p in ports]


def _mount(doc: dict[str, Any], log: HookLog) -> None:
    mount = doc.get("mount") or []
    if not mount or is_mountpoint(doc["rootfs"]):
        return
    os.makedirs(doc["rootfs"], exist_ok=True)
    mountsys.replay(mount)  # no mount(8) but for records of an earlier lxcri
    log(f"pre-start: mounted rootfs at {doc['rootfs']}")


def pre_start(ctx: HookContext, doc: dict[str, Any], log: HookLog) -> None:
    _mount(doc, log)
    _mount_volumes(ctx.state_dir, log)
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
            name_of=lambda cid: _name_of(os.path.dirname(ctx.state_dir), cid),
        )
        log(f"pre-start: published {len(ports)} port(s) to {doc['ipv4']}")


def _name_of(containers: str | Path, cid: str) -> str:
    """The name of the container with id ``cid`` among ``containers``' records (for
    messages: people know containers by name); the id when none has it."""
    from pathlib import Path

    for marker in Path(containers).glob(f"*/{MARKER}"):
        try:
            if json.loads(marker.read_text()).get("id") == cid:
                return marker.parent.name
        except (OSError, ValueError, AttributeError):
            continue
    return cid


def _mount_volumes(state_dir: str, log: HookLog) -> None:
    """An unprivileged container's volumes, at the mount points in its state dir that
    LXC mounts them from (the volumes dir itself is private: containers.private)."""
    if not os.path.exists(os.path.join(state_dir, "volumes.json")):
        return  # a privileged container, or none: no import
    import subprocess
    from pathlib import Path

    from lxcri_core.containers.private import volume_mounts

    for src, dst in volume_mounts(Path(state_dir)):
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
        if not os.path.isdir(os.path.join(ctx.state_dir, "volumes")):
            return
        from pathlib import Path

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


def route_core_logs(sink: HookLog, container: str = "") -> None:
    """Send the core's log lines to ``hooks.log``: LXC drops a hook's stderr."""
    from lxcri_core.log import bind_container, route_to

    if container:
        bind_container(container).bind()

    def emit(level: str, name: str, event: str, fields: dict[str, Any]) -> None:
        sink(" ".join([f"{level}: {name}: {event}", *(f"{k}={v}" for k, v in fields.items())]))

    route_to(emit)


def run(ctx: HookContext) -> int:
    """Run the hook's action; its duration (and failure) goes to the exporter's counters."""
    t0 = time.monotonic()
    rc = 1
    try:
        rc = _run(ctx)
        return rc
    finally:
        if ctx.hook_type in ACTIONS:
            from lxcri_core.metrics import counters

            seconds = time.monotonic() - t0
            counters.record(
                counters.root_of_state_dir(ctx.state_dir), "hook", ctx.hook_type, seconds, rc == 0
            )


def _run(ctx: HookContext) -> int:
    sdir = ctx.state_dir
    log = HookLog(os.path.join(sdir, "hooks.log"))
    action = ACTIONS.get(ctx.hook_type)
    if action is None:
        return 0
    route_core_logs(log, ctx.name)
    try:
        with open(os.path.join(sdir, MARKER)) as f:
            doc = json.load(f)
        action(ctx, doc, log)
    except Exception as e:  # LXC shows nothing of a hook's failure: log it
        sp = sys.modules.get("subprocess")  # not imported: cannot be its error
        if sp is not None and isinstance(e, sp.CalledProcessError):
            log(f"{ctx.hook_type}: FAILED: {' '.join(e.cmd)}: {(e.stderr or '').strip()}")
        else:
            log(f"{ctx.hook_type}: FAILED: {type(e).__name__}: {e}")
        return 1
    return 0
